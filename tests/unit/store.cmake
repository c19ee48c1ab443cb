# SQLite store tests (ef_store): operations and validation, change log and replication, crash
# safety under SIGKILL.
ef_unit_test(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.c)
target_link_libraries(test_store PRIVATE ef_store)
ef_unit_test(test_store_log ${CMAKE_CURRENT_LIST_DIR}/test_store_log.c)
target_link_libraries(test_store_log PRIVATE ef_store)
# kill -9 test: 60 SIGKILLs of a writer; every acknowledged write must survive.
add_executable(crash_store ${CMAKE_SOURCE_DIR}/tests/crash/crash_store.c)
target_link_libraries(crash_store PRIVATE ef_store)
add_test(NAME test_store_crash COMMAND crash_store 60)
set_tests_properties(test_store_crash PROPERTIES TIMEOUT 120)
