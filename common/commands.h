/*
 * commands.h - one entry point per command, each in the module that owns
 * it.  refscan.c dispatches on argv[1]; argv[0] is the command name.
 * Each returns a process exit status (common/exitcodes.h).
 */
#ifndef REFSCAN_COMMANDS_H
#define REFSCAN_COMMANDS_H

int cmd_info(int argc, char **argv);      /* formats/info.c */
int cmd_describe(int argc, char **argv);  /* indexer/cmd_describe.c */
int cmd_index(int argc, char **argv);     /* indexer/index.c */
int cmd_log(int argc, char **argv);       /* indexer/log.c */
int cmd_diff(int argc, char **argv);      /* indexer/log.c */
int cmd_verify(int argc, char **argv);    /* indexer/verify.c */
int cmd_extract(int argc, char **argv);   /* indexer/extract.c */
int cmd_prune(int argc, char **argv);     /* indexer/prune.c */
int cmd_reindex(int argc, char **argv);   /* indexer/reindex.c */
int cmd_query(int argc, char **argv);     /* query/query.c */

#endif
