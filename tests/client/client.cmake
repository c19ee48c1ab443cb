# libedgeflag's tests (plain C programs, run by ctest in every build, sanitizer builds included):
#   test_client_cache   cache file format, offline start, damaged files rejected (no server)
#   test_client_server  against a real `edgeflag serve`: bootstrap, push and polling updates,
#                       tokens, offline restart from the cache, threads evaluating through updates
#   test_client_fallback  a node without the stream (404): polling with ETags, 304s
#   client_parity       the library's answers equal the server's /evaluate/v1 on a generated
#                       corpus (node + tests/compat/gen.mjs; client_eval is its helper)
#   test_client_locale  the same answers under de_DE.UTF-8 as under C (fails if it is missing)
#   test_client_tls     over HTTPS: CA file, client certificates, insecure; unknown CA, wrong host,
#                       expired, refused client certificate: EF_ETLS naming the node and the reason
#   test_client_hostile  a tampered cache file and a node whose header values must not be echoed
#                       back (CR, LF): nothing of theirs reaches the next request; an
#                       X-Edgeflag-Version that is not a u64 is no version
#   test_client_close_resolving  close while the node's host name is being resolved: prompt
#   test_client_stream_bounds  a stream that never ends a line or an event, a snapshot that does
#                       not compile, a stream that ends at once, one that drips bytes and never a
#                       line: bounded, EF_EPROTOCOL, exponential backoff
enable_testing()

function(ef_client_test_env name)
  set(env "EF_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  if(EF_TSAN)
    list(APPEND env "TSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1")
  endif()
  if(EF_SANITIZE)
    list(APPEND env "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${env}" TIMEOUT 300)
endfunction()

add_executable(test_client_cache ${CMAKE_CURRENT_LIST_DIR}/test_client_cache.c)
target_link_libraries(test_client_cache PRIVATE edgeflag_static)
add_test(NAME test_client_cache COMMAND test_client_cache)
ef_client_test_env(test_client_cache)

add_executable(test_client_server ${CMAKE_CURRENT_LIST_DIR}/test_client_server.c)
target_link_libraries(test_client_server PRIVATE edgeflag_static)
add_test(NAME test_client_server COMMAND test_client_server $<TARGET_FILE:edgeflag>)
ef_client_test_env(test_client_server)

add_executable(client_eval ${CMAKE_CURRENT_LIST_DIR}/client_eval.c)
target_link_libraries(client_eval PRIVATE edgeflag_static)
find_program(EF_NODE node)
if(EF_NODE)
  add_test(NAME client_parity COMMAND ${EF_NODE} ${CMAKE_CURRENT_LIST_DIR}/parity.mjs
           --edgeflag $<TARGET_FILE:edgeflag> --client-eval $<TARGET_FILE:client_eval>)
  ef_client_test_env(client_parity)
  # TLS: certificates made at test time by tests/compat/pki.mjs (the openssl command)
  add_executable(test_client_tls ${CMAKE_CURRENT_LIST_DIR}/test_client_tls.c)
  target_link_libraries(test_client_tls PRIVATE edgeflag_static)
  add_test(NAME test_client_tls COMMAND test_client_tls $<TARGET_FILE:edgeflag> ${EF_NODE}
           ${CMAKE_SOURCE_DIR}/tests/compat/pki.mjs)
  ef_client_test_env(test_client_tls)
  # started first by ctest -j (seconds under TSan; see tests/unit/store.cmake)
  set_tests_properties(client_parity PROPERTIES COST 15)
  set_tests_properties(test_client_tls PROPERTIES COST 10)
else()
  message(WARNING "node not found: the client_parity and test_client_tls tests cannot run (scripts/install-deps.sh test)")
endif()

add_executable(test_client_fallback ${CMAKE_CURRENT_LIST_DIR}/test_client_fallback.c)
target_link_libraries(test_client_fallback PRIVATE edgeflag_static Threads::Threads)
add_test(NAME test_client_fallback COMMAND test_client_fallback)
ef_client_test_env(test_client_fallback)

# Item 9 of issue 19: the same answers under a decimal-comma locale (de_DE.UTF-8, installed by
# scripts/install-deps.sh test; the test fails, never skips, when it is missing).
add_executable(test_client_locale ${CMAKE_CURRENT_LIST_DIR}/test_client_locale.c)
target_link_libraries(test_client_locale PRIVATE edgeflag_static)
add_test(NAME test_client_locale COMMAND test_client_locale)
ef_client_test_env(test_client_locale)

# Item 7 of issue 19: a node whose stream never ends a line or an event, or whose snapshot does
# not compile: bounded, EF_EPROTOCOL, exponential backoff (a fake node on threads of the test).
add_executable(test_client_stream_bounds ${CMAKE_CURRENT_LIST_DIR}/test_client_stream_bounds.c)
target_link_libraries(test_client_stream_bounds PRIVATE edgeflag_static Threads::Threads)
add_test(NAME test_client_stream_bounds COMMAND test_client_stream_bounds)
ef_client_test_env(test_client_stream_bounds)
set_tests_properties(test_client_stream_bounds PROPERTIES COST 10)

# Input the client must not trust: a tampered cache file (checksum made right again) and a node's
# ETag holding CR or LF must never end up in a request header (a fake node on a thread of the test).
add_executable(test_client_hostile ${CMAKE_CURRENT_LIST_DIR}/test_client_hostile.c)
target_link_libraries(test_client_hostile PRIVATE edgeflag_static Threads::Threads)
add_test(NAME test_client_hostile COMMAND test_client_hostile)
ef_client_test_env(test_client_hostile)

# ef_client_close while the node's name is being resolved by a silent name server (the test
# defines getaddrinfo, stalling one host name): close must not wait for the lookup.
add_executable(test_client_close_resolving ${CMAKE_CURRENT_LIST_DIR}/test_client_close_resolving.c)
target_link_libraries(test_client_close_resolving PRIVATE edgeflag_static Threads::Threads ${CMAKE_DL_LIBS})
add_test(NAME test_client_close_resolving COMMAND test_client_close_resolving)
ef_client_test_env(test_client_close_resolving)

# libedgeflag.so loaded with dlopen() (the inlined RCU read section must not need static TLS),
# evaluating on new threads with small, repeated-key and over-4-KiB contexts.
add_executable(test_client_dlopen ${CMAKE_CURRENT_LIST_DIR}/test_client_dlopen.c)
target_include_directories(test_client_dlopen PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(test_client_dlopen PRIVATE ef_base PkgConfig::CURL Threads::Threads ${CMAKE_DL_LIBS})
add_test(NAME test_client_dlopen COMMAND test_client_dlopen $<TARGET_FILE:edgeflag>
         $<TARGET_FILE:edgeflag_shared>)
ef_client_test_env(test_client_dlopen)
