# The SQLite store (schema and migrations, entities, change log, compile/publish) and the
# `edgeflag import` / `edgeflag export` commands. Included from the root CMakeLists.txt (same scope).
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
list(APPEND EF_STORE_SOURCES
  src/store/sqlite_schema.c src/store/sqlite_validate.c src/store/sqlite_log.c
  src/store/sqlite_ns.c src/store/sqlite_flags.c src/store/sqlite_segments.c
  src/store/sqlite_rules.c src/store/sqlite_doc.c src/store/sqlite_incr.c src/store/sqlite_tokens.c
  src/store/sqlite_backup.c src/store/sqlite_persist.c src/store/sqlite_checkpoint.c
  src/store/sqlite_capture.c
  src/store/open.c
  src/store/store_err.c src/store/attribution.c src/store/entry.c)
list(APPEND EF_STORE_LIBS PkgConfig::SQLITE)
list(APPEND EF_CLI_SOURCES src/cli/cmd_import.c src/cli/cmd_export.c src/cli/cmd_backup.c)
