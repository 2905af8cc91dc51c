/*
 * commands.h - one entry point per command, each in the module that owns
 * it.  refscan.c dispatches on argv[1]; argv[0] is the command name.
 * Each returns a process exit status (common/exitcodes.h).
 */
#ifndef REFSCAN_COMMANDS_H
#define REFSCAN_COMMANDS_H

int cmd_info(int argc, char **argv);      /* formats/info.c */

#endif
