# The libSQL/Turso backend (docs/libsql.md): a Hrana-over-HTTP client (libcurl) and a local SQLite
# cache written through to the remote database. Included from the root CMakeLists.txt.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND EF_STORE_SOURCES src/store/remote.c src/store/hrana.c src/store/libsql.c)
list(APPEND EF_STORE_LIBS PkgConfig::CURL ef_tls_client)
