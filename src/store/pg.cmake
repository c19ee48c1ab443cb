# The PostgreSQL backend (docs/storage.md): a libpq adapter of the remote-store core (remote.c, in
# libsql.cmake). Included from the root CMakeLists.txt after libsql.cmake.
pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
list(APPEND EF_STORE_SOURCES src/store/rdb.c src/store/pg.c src/store/pg_schema.c)
list(APPEND EF_STORE_LIBS PkgConfig::PQ)
