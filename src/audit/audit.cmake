# Audit events (src/audit): Flipt's event format from committed change-log entries, delivered to a
# log file and a signed webhook (libcurl) from one thread. Included from the root CMakeLists.txt.
list(APPEND EF_SERVER_SOURCES src/audit/event.c src/audit/audit.c)
