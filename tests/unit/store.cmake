# Store tests (ef_store): operations and validation, change log and replication, crash safety
# under SIGKILL. The operation and change-log suites run once per backend from the same sources:
# on SQLite, on libSQL through the Hrana test peer (tests/libsql/with-peer.sh starts it and
# sets EF_TEST_LIBSQL_URL, which test_store_helper.h reads), and on a throwaway PostgreSQL 15
# (tests/pg/with-postgres.sh, EF_TEST_PG_URL) and MariaDB 10.11 (tests/mysql/with-mariadb.sh,
# EF_TEST_MYSQL_URL).
ef_unit_test(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.c)
target_link_libraries(test_store PRIVATE ef_store)
ef_unit_test(test_store_log ${CMAKE_CURRENT_LIST_DIR}/test_store_log.c)
target_link_libraries(test_store_log PRIVATE ef_store)
find_program(EF_NODE node)
if(EF_NODE)
  foreach(t test_store test_store_log test_hrana)
    add_test(NAME ${t}_libsql
             COMMAND ${CMAKE_SOURCE_DIR}/tests/libsql/with-peer.sh $<TARGET_FILE:${t}>)
    ef_test_env(${t}_libsql)
    set_tests_properties(${t}_libsql PROPERTIES TIMEOUT 180 RESOURCE_LOCK libsql_npm)
  endforeach()
endif()
foreach(t test_store test_store_log)
  add_test(NAME ${t}_pg COMMAND ${CMAKE_SOURCE_DIR}/tests/pg/with-postgres.sh $<TARGET_FILE:${t}>)
  ef_test_env(${t}_pg)
  set_tests_properties(${t}_pg PROPERTIES TIMEOUT 180)
  add_test(NAME ${t}_mysql
           COMMAND ${CMAKE_SOURCE_DIR}/tests/mysql/with-mariadb.sh $<TARGET_FILE:${t}>)
  ef_test_env(${t}_mysql)
  set_tests_properties(${t}_mysql PROPERTIES TIMEOUT 180)
endforeach()
# The Hrana client on its own (value encoding, batches, errors, stream reopening, keep-alive):
# needs a Hrana server, so it only runs under with-peer.sh (above).
add_executable(test_hrana ${CMAKE_CURRENT_LIST_DIR}/test_hrana.c)
target_link_libraries(test_hrana PRIVATE ef_store PkgConfig::CMOCKA)
# gcc's -fsanitize=undefined leaves out float-to-integer overflow; the Hrana client converts floats
# a server sent, so in the sanitizer build the store is checked for it too (issue 19, item 10).
if(EF_SANITIZE)
  target_compile_options(ef_store PRIVATE -fsanitize=float-cast-overflow)
  target_compile_options(test_hrana PRIVATE -fsanitize=float-cast-overflow)
endif()
# kill -9 test: 60 SIGKILLs of a writer; every acknowledged write must survive.
add_executable(crash_store ${CMAKE_SOURCE_DIR}/tests/crash/crash_store.c)
target_link_libraries(crash_store PRIVATE ef_store)
add_test(NAME test_store_crash COMMAND crash_store 60)
set_tests_properties(test_store_crash PROPERTIES TIMEOUT 120)
# Issue 19 regressions of the store and its history (SQLite only: faults go into the local file).
ef_unit_test(test_store_history ${CMAKE_CURRENT_LIST_DIR}/test_store_history.c)
target_link_libraries(test_store_history PRIVATE ef_store)
# Incremental snapshots against full recompiles after seeded random writes (DESIGN.md principle 8).
ef_unit_test(test_store_incr ${CMAKE_CURRENT_LIST_DIR}/test_store_incr.c)
target_link_libraries(test_store_incr PRIVATE ef_store PkgConfig::SQLITE)
set(EF_INCR_TESTS test_store_incr)
# Under the sanitizers the random-write comparison runs fewer steps per seed than 150: their job
# there is races and memory errors (the concurrent reader test), and the plain build keeps the
# full comparison; at 150 steps TSan alone spent two minutes on it, at 50 still 69 s of its 75,
# and under ASan with ctest -j4 it took 61 s at 50 steps, the longest test of its step.
if(EF_TSAN OR EF_SANITIZE)
  set_property(TEST test_store_incr APPEND PROPERTY ENVIRONMENT "EF_INCR_STEPS=20")
else()
  # In the plain build its five seeds, in one test, made the tail of the step (50 s of its 50 with
  # ctest -j4): three tests there, run at once. test_store_incr keeps the other tests of the file.
  # Not under the sanitizers: with 20 steps a seed they are short, and three sanitized processes
  # at once beside the others made TSan's step 65 s -> 93 s.
  set_property(TEST test_store_incr APPEND PROPERTY ENVIRONMENT "EF_INCR_SEEDS=1,2")
  add_test(NAME test_store_incr_seeds_3_4 COMMAND test_store_incr --random-only)
  ef_test_env(test_store_incr_seeds_3_4)
  set_property(TEST test_store_incr_seeds_3_4 APPEND PROPERTY ENVIRONMENT "EF_INCR_SEEDS=3,4")
  add_test(NAME test_store_incr_seed_5 COMMAND test_store_incr --random-only)
  ef_test_env(test_store_incr_seed_5)
  set_property(TEST test_store_incr_seed_5 APPEND PROPERTY ENVIRONMENT "EF_INCR_SEEDS=5")
  list(APPEND EF_INCR_TESTS test_store_incr_seeds_3_4 test_store_incr_seed_5)
endif()
# It compares states after thousands of commits and never tests durability (tests/crash does):
# on tmpfs those commits' fdatasync calls cost nothing (33 s -> 22 s in the plain build).
if(IS_DIRECTORY /dev/shm)
  set_property(TEST ${EF_INCR_TESTS} APPEND PROPERTY ENVIRONMENT "TMPDIR=/dev/shm")
endif()

# ctest -j starts the tests with the highest COST first. A fresh tree has no timings of its own,
# so it ran them in declaration order and the longest, declared last, made the tail of each run
# (under TSan test_store_incr started 36th of 41 and ran 41 s alone). Seconds under TSan.
# The libSQL, PostgreSQL and MariaDB ones exist only when their servers can run here.
function(ef_test_cost name seconds)
  if(TEST ${name})
    set_property(TEST ${name} PROPERTY COST ${seconds})
  endif()
endfunction()
if(EF_TSAN OR EF_SANITIZE)
  ef_test_cost(test_store_incr 40)
else()
  ef_test_cost(test_store_incr 16)
endif()
ef_test_cost(test_store_incr_seeds_3_4 15)
ef_test_cost(test_store_incr_seed_5 13)
ef_test_cost(test_store_log_pg 14)
ef_test_cost(test_store_log_mysql 12)
ef_test_cost(test_hrana_libsql 11)
ef_test_cost(test_store_pg 10)
ef_test_cost(test_store_crash 8)
ef_test_cost(test_store_log_libsql 8)
ef_test_cost(test_store_mysql 8)
