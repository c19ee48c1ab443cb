# Declarative format, snapshot document and directory backend tests (ef_store).
ef_unit_test(test_decl ${CMAKE_CURRENT_LIST_DIR}/test_decl.c)
target_link_libraries(test_decl PRIVATE ef_store)
ef_unit_test(test_decl_roundtrip ${CMAKE_CURRENT_LIST_DIR}/test_decl_roundtrip.c)
target_link_libraries(test_decl_roundtrip PRIVATE ef_store)
ef_unit_test(test_snapdoc ${CMAKE_CURRENT_LIST_DIR}/test_snapdoc.c)
target_link_libraries(test_snapdoc PRIVATE ef_store)
ef_unit_test(test_dir ${CMAKE_CURRENT_LIST_DIR}/test_dir.c)
target_link_libraries(test_dir PRIVATE ef_store)
ef_unit_test(test_decl_validate ${CMAKE_CURRENT_LIST_DIR}/test_decl_validate.c
             ${CMAKE_SOURCE_DIR}/src/cli/cmd_validate.c)
target_link_libraries(test_decl_validate PRIVATE ef_store)
ef_unit_test(test_regressions ${CMAKE_CURRENT_LIST_DIR}/test_regressions.c)
target_link_libraries(test_regressions PRIVATE ef_store)
