/*
 * cli.h - the edgeflag subcommands. Each takes argc/argv after the subcommand name and returns the
 * process exit status (0 ok, 1 runtime failure, 2 bad usage or bad input file).
 */
#ifndef EF_CLI_CLI_H
#define EF_CLI_CLI_H

int ef_cmd_eval(int argc, char **argv);
/* further subcommands (one line each) */
int ef_cmd_serve(int argc, char **argv);
int ef_cmd_validate(int argc, char **argv);
int ef_cmd_import(int argc, char **argv);
int ef_cmd_export(int argc, char **argv);
int ef_cmd_backup(int argc, char **argv);  /* cmd_backup.c: an online copy of a store */
int ef_cmd_restore(int argc, char **argv); /* cmd_backup.c: a backup into a store, new history */
int ef_cmd_restore_s3(int argc, char **argv); /* cmd_restore_s3.c: from continuous backup */
int ef_cmd_routes(int argc, char **argv); /* cmd_serve.c: the route table serve would use */

#endif
