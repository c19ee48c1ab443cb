# The MySQL/MariaDB backend (docs/storage.md): a libmariadb adapter of the remote-store core
# (remote.c, in libsql.cmake; rdb.c, in pg.cmake). Included from the root CMakeLists.txt after
# pg.cmake.
pkg_check_modules(MARIADB REQUIRED IMPORTED_TARGET libmariadb)
list(APPEND EF_STORE_SOURCES src/store/mysql.c src/store/mysql_schema.c)
list(APPEND EF_STORE_LIBS PkgConfig::MARIADB)
