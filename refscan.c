/*
 * refscan.c - the top-level dispatcher: `refscan <command> [options]`.
 *
 * Each command lives in the module that owns it (common/commands.h); this
 * file only picks one, and handles --help and --version.
 */
#include <archive.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "common/commands.h"
#include "common/exitcodes.h"
#include "common/out.h"
#include "common/version.h"
#include "indexer/descstore.h"
#include "query/vindex.h"

#include "common/banned.h"

#ifndef FAISS_VERSION_STR
#define FAISS_VERSION_STR "unknown"
#endif

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "info", cmd_info, "read scan files and report what they hold" },
	{ "describe", cmd_describe, "print the shape and texture descriptor of scans" },
	{ "index", cmd_index, "store new and changed scans as a new archive version" },
	{ "log", cmd_log, "list the versions of the archive" },
	{ "diff", cmd_diff, "show the scans two versions add, change and remove" },
	{ "verify", cmd_verify, "re-read the archive and name damaged volumes and scans" },
	{ "extract", cmd_extract, "restore scans of a version, byte-identical" },
	{ "prune", cmd_prune, "drop old versions and the bytes only they used" },
	{ "reindex", cmd_reindex, "describe the archived scans again (new descriptor schema)" },
	{ "query", cmd_query, "find the archived scans closest to a sculpt" },
};

static void usage(FILE *fp)
{
	fputs("usage: refscan [--version] [--help] <command> [options] [args]\n\n"
	      "commands:\n", fp);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\n'refscan <command> --help' describes a command; see refscan(1).\n", fp);
}

static void version(void)
{
	printf("refscan %s\n", REFSCAN_VERSION);
	printf("  %s\n", archive_version_details());
	printf("  faiss %s (C API)\n", FAISS_VERSION_STR);
	printf("  OpenMP %d, %d threads available\n", _OPENMP, omp_get_max_threads());
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/*
	 * Indexing commits a search index with each version, but indexer/
	 * must not depend on query/: the builder is handed over here.
	 */
	descstore_set_builder(vindex_build);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return out_finish(EXIT_OK);
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		version();
		return out_finish(EXIT_OK);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return out_finish(commands[i].fn(argc - 1, argv + 1));
	fprintf(stderr, "refscan: error: '%s' is not a refscan command\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
