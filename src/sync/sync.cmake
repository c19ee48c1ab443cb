# Replication (src/sync): the change-log feed, the follower, write forwarding, cluster status.
# libcurl carries the follower's stream and forwarded writes.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
list(APPEND EF_SERVER_SOURCES src/sync/feed.c src/sync/follower.c src/sync/forwarder.c
     src/sync/status.c src/sync/waits.c src/sync/cluster_view.c src/sync/tree.c
     src/sync/reporter.c src/sync/heartbeat.c)
list(APPEND EF_SERVER_LIBS PkgConfig::CURL ef_tls_client)
