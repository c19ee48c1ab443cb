# ui.cmake - embeds the web UI (the files under ui/) into the server at build time and adds the
# handler that serves them (src/api/ui_http.c). Included from the root CMakeLists.txt.
# It must never fetch anything: the assets are the files in this directory, turned into C arrays by
# ui/embed.cmake (plain CMake, no compiler tools or network), so the build works offline.
file(GLOB EF_UI_FILES CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/ui/*.html ${CMAKE_SOURCE_DIR}/ui/*.js ${CMAKE_SOURCE_DIR}/ui/*.css
  ${CMAKE_SOURCE_DIR}/ui/*.svg)
set(EF_UI_GEN_DIR ${CMAKE_BINARY_DIR}/ui_gen)
add_custom_command(
  OUTPUT ${EF_UI_GEN_DIR}/ef_ui_assets.c ${EF_UI_GEN_DIR}/ef_ui_assets.h
  COMMAND ${CMAKE_COMMAND} -DUI_DIR=${CMAKE_SOURCE_DIR}/ui -DOUT_DIR=${EF_UI_GEN_DIR}
          -P ${CMAKE_SOURCE_DIR}/ui/embed.cmake
  DEPENDS ${EF_UI_FILES} ${CMAKE_SOURCE_DIR}/ui/embed.cmake
  COMMENT "Embedding the web UI"
  VERBATIM)
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/api/ui_http.c ${EF_UI_GEN_DIR}/ef_ui_assets.c
  PROPERTIES INCLUDE_DIRECTORIES ${EF_UI_GEN_DIR})
list(APPEND EF_SERVER_SOURCES ${EF_UI_GEN_DIR}/ef_ui_assets.c ${EF_UI_GEN_DIR}/ef_ui_assets.h
  ${CMAKE_SOURCE_DIR}/src/api/ui_http.c)
