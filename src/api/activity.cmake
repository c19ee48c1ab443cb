# Evaluation activity (issue 17): per-flag, per-outcome counts by minute (eval_activity.c, counted
# from eval_metrics.c) and their route and metrics (activity_http.c).
list(APPEND EF_SERVER_SOURCES src/api/eval_activity.c src/api/activity_http.c)
