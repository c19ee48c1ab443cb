# fuzz.cmake - the libFuzzer targets (tests/fuzz/*.c), built only with -DEF_FUZZ=ON and clang, as
# scripts/fuzz.sh configures it (CMAKE_C_FLAGS carries -fsanitize=fuzzer-no-link,address,undefined
# so the libraries under test are instrumented too). Included from the root CMakeLists.txt.
# Each target links the same libraries the product links, never a copy of their sources; it must
# never be part of a normal build (the fuzzer's main() replaces the program's).
set(EF_FUZZ_TARGETS "")
function(ef_fuzz_target name)
  if(NOT EXISTS ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
    return()
  endif()
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  target_link_libraries(${name} PRIVATE ${ARGN})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_compile_definitions(${name} PRIVATE EF_FUZZ_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  set(EF_FUZZ_TARGETS ${EF_FUZZ_TARGETS} ${name} PARENT_SCOPE)
endfunction()

# pure parsers: fast, in-memory
ef_fuzz_target(fuzz_json ef_eval)
ef_fuzz_target(fuzz_eval_request ef_api)
ef_fuzz_target(fuzz_decl ef_store)
ef_fuzz_target(fuzz_hrana ef_store)
ef_fuzz_target(fuzz_rdb ef_store)
ef_fuzz_target(fuzz_sse ef_base)
ef_fuzz_target(fuzz_snapshot ef_api)
ef_fuzz_target(fuzz_jwt ef_jwt)
ef_fuzz_target(fuzz_cookie ef_base)
ef_fuzz_target(fuzz_client edgeflag_static)
ef_fuzz_target(fuzz_backup ef_backup)
# a real SQLite store in /dev/shm
ef_fuzz_target(fuzz_replication ef_store)
# an in-process node on loopback (tests/fuzz/fuzz_server.h)
ef_fuzz_target(fuzz_http ef_server)
ef_fuzz_target(fuzz_mgmt ef_server)
# change-log entries read into history matches and audit events (pure, in memory)
ef_fuzz_target(fuzz_audit ef_server)
ef_fuzz_target(fuzz_cluster_view ef_server)
ef_fuzz_target(fuzz_activity_report ef_server)

add_custom_target(fuzz_all DEPENDS ${EF_FUZZ_TARGETS})
