# Evaluation benchmark (run by scripts/bench.sh, not by the test suite).
add_executable(bench_eval ${CMAKE_CURRENT_LIST_DIR}/bench_eval.c)
target_link_libraries(bench_eval PRIVATE ef_server) # ef_server: the activity counter (--count)
