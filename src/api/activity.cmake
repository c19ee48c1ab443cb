# Evaluation activity (issue 17): per-flag, per-outcome counts by minute (eval_activity.c, counted
# from eval_metrics.c), their route and metrics (activity_http.c), and other nodes' counts carried
# up in cluster reports (activity_peers.c).
list(APPEND EF_SERVER_SOURCES src/api/eval_activity.c src/api/activity_http.c src/api/activity_peers.c)
