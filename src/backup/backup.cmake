# Continuous backup (src/backup): object names and formats, the S3 client (libcurl, SigV4), the
# shipper thread `serve --backup` runs, and `edgeflag restore s3://…`. Included from the root
# CMakeLists.txt (same scope) after the store and sync fragments.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
add_library(ef_backup STATIC src/backup/format.c src/backup/s3_xml.c src/backup/s3.c
  src/backup/shipper.c src/backup/restore.c)
target_link_libraries(ef_backup PUBLIC ef_store ef_http PkgConfig::CURL)
list(APPEND EF_SERVER_LIBS ef_backup)
list(APPEND EF_CLI_SOURCES src/cli/cmd_restore_s3.c)
