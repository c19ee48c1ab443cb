# The declarative format (features.yml read/write), the snapshot document writer, the read-only
# directory backend and `edgeflag validate`. Included from the root CMakeLists.txt (same scope).
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
list(APPEND EF_STORE_SOURCES
  src/store/decl_read.c src/store/yaml_load.c src/store/decl_write.c src/store/snapdoc.c src/store/dir.c src/store/dir_store.c)
list(APPEND EF_STORE_LIBS PkgConfig::YAML)
list(APPEND EF_CLI_SOURCES src/cli/cmd_validate.c)
