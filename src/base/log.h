/*
 * log.h - one line per event on stderr: time, level, message, then key=value fields (logfmt), so
 * both people and log collectors can read it. Thread-safe (one write(2) per line).
 */
#ifndef EF_BASE_LOG_H
#define EF_BASE_LOG_H

typedef enum ef_log_level { EF_LOG_DEBUG, EF_LOG_INFO, EF_LOG_WARN, EF_LOG_ERROR } ef_log_level;

/* Events below this level are dropped (process-wide setting, made at start-up; any thread may
 * change it later, as a test does to see a warning). */
void ef_log_set_level(ef_log_level level);
int ef_log_parse_level(const char *name, ef_log_level *out); /* 0 or -1 */
/* Every line says node=NAME after its message (`serve --name`; copied, at most 63 bytes; NULL or
 * "" for none). Process-wide, set once at start-up. */
void ef_log_set_node(const char *name);

/* fields: alternating key and value C strings, ending with NULL. Values are quoted when needed. */
void ef_log(ef_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
