# libedgeflag: the embedded client library (include/edgeflag.h, docs/client.md).
#   build/libedgeflag.so  exports only the public ef_* API (version script src/client/edgeflag.map)
#   build/libedgeflag.a   the same objects plus the engine (ef_base + ef_eval), for static linking
#   build/edgeflag.pc     pkg-config file for an installed copy; edgeflag-uninstalled.pc for this tree
# The library is the engine (src/eval, src/base) plus libcurl; it must never link the server
# (src/http, src/api, src/store).

# The server side of push: the per-namespace change stream the client subscribes to.
list(APPEND EF_SERVER_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../api/ns_stream.c)

pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)

set(EF_CLIENT_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/client.c
  ${CMAKE_CURRENT_LIST_DIR}/replica.c
  ${CMAKE_CURRENT_LIST_DIR}/cache.c)
set(EF_CLIENT_MAP ${CMAKE_CURRENT_LIST_DIR}/edgeflag.map)

add_library(edgeflag_shared SHARED ${EF_CLIENT_SOURCES})
target_link_libraries(edgeflag_shared PRIVATE ef_eval ef_tls_client PkgConfig::CURL)
# -z nodelete: dlclose() never unmaps the library. liburcu's reclaim (call_rcu) thread, started by
# the first snapshot the client publishes, cannot be stopped and runs liburcu's and our code; were
# the library (and liburcu-bp with it) unmapped under it, that thread would jump into freed memory.
target_link_options(edgeflag_shared PRIVATE -Wl,--version-script=${EF_CLIENT_MAP} -Wl,--no-undefined -Wl,-z,nodelete)
set_target_properties(edgeflag_shared PROPERTIES
  OUTPUT_NAME edgeflag
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}
  C_VISIBILITY_PRESET hidden
  POSITION_INDEPENDENT_CODE ON
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  LINK_DEPENDS ${EF_CLIENT_MAP})

# The static archive carries the engine's objects too, so `-ledgeflag` alone resolves everything
# but the system libraries pkg-config lists.
add_library(edgeflag_static STATIC ${EF_CLIENT_SOURCES}
  $<TARGET_OBJECTS:ef_base> $<TARGET_OBJECTS:ef_eval> $<TARGET_OBJECTS:ef_tls_client>)
target_link_libraries(edgeflag_static PUBLIC PkgConfig::CURL PkgConfig::URCU PkgConfig::ZLIB
  Threads::Threads m)
set_target_properties(edgeflag_static PROPERTIES
  OUTPUT_NAME edgeflag
  ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}
  C_VISIBILITY_PRESET hidden
  POSITION_INDEPENDENT_CODE ON)

set(EF_PC_REQUIRES_PRIVATE "libcurl liburcu-bp zlib")
set(EF_PC_VERSION ${PROJECT_VERSION})
include(GNUInstallDirs)
set(EF_PC_PREFIX ${CMAKE_INSTALL_PREFIX})
set(EF_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
set(EF_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/edgeflag.pc.in ${CMAKE_BINARY_DIR}/edgeflag.pc @ONLY)
set(EF_PC_PREFIX ${CMAKE_BINARY_DIR})
set(EF_PC_LIBDIR ${CMAKE_BINARY_DIR})
set(EF_PC_INCLUDEDIR ${CMAKE_SOURCE_DIR}/include)
configure_file(${CMAKE_CURRENT_LIST_DIR}/edgeflag.pc.in ${CMAKE_BINARY_DIR}/edgeflag-uninstalled.pc @ONLY)

install(TARGETS edgeflag_shared edgeflag_static
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/include/edgeflag.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_BINARY_DIR}/edgeflag.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The example program, built against the shared library as an application would link it.
add_executable(edgeflag_example ${CMAKE_SOURCE_DIR}/examples/client_example.c)
target_link_libraries(edgeflag_example PRIVATE edgeflag_shared)

include(${CMAKE_SOURCE_DIR}/tests/client/client.cmake)
include(${CMAKE_SOURCE_DIR}/bench/client.cmake)
