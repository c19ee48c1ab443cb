# libedgeflag benchmark (bench/run-client.sh runs it via bench/client_bench.mjs; not a test).
add_executable(bench_client ${CMAKE_CURRENT_LIST_DIR}/bench_client.c)
target_link_libraries(bench_client PRIVATE edgeflag_static)
