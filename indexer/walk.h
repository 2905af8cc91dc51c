/*
 * walk.h - find the scan files under a source tree.
 *
 * The walk never leaves the tree through a symlink unless asked to: a
 * symlinked file is taken only when its real path lies inside the root,
 * a symlinked directory is not entered, and both are reported.  With
 * follow_symlinks every link is followed, directory cycles excepted.
 * A directory that cannot be read is reported, not treated as empty, so
 * the indexer keeps what the archive already holds from it.
 */
#ifndef REFSCAN_WALK_H
#define REFSCAN_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct err;

struct walk_file {
	char *rel;          /* path below the root, '/'-separated */
	uint64_t size;      /* bytes */
	int64_t mtime_ns;   /* ns since the epoch */
	uint64_t inode;
	uint32_t mode;      /* permission bits */
};

struct walk_note {
	char *rel;          /* path below the root ("" for the root) */
	char *msg;          /* what happened, lowercase, no newline */
	bool unreadable;    /* a directory whose contents are unknown */
};

struct walk_options {
	bool follow_symlinks;       /* follow links out of the tree too */
	bool (*want)(const char *name); /* pick files by name */
	bool have_skip;             /* skip the directory (skip_dev, skip_ino) */
	dev_t skip_dev;             /* e.g. the archive inside the tree */
	ino_t skip_ino;
};

struct walk_result {
	char *root_real;    /* realpath of the root */
	size_t n_files;
	struct walk_file *files;  /* sorted by rel (strcmp) */
	size_t n_notes;
	struct walk_note *notes;  /* symlinks skipped, unreadable dirs */
};

/*
 * Walk root.  Returns 0 (problems inside the tree become notes) or
 * ERR_NOTFOUND/ERR_IO when the root itself cannot be read, ERR_NOMEM.
 * Release *out with walk_result_release().
 */
int walk_tree(const char *root, const struct walk_options *o,
	      struct walk_result *out, struct err *e);
void walk_result_release(struct walk_result *r);

/*
 * True when path's real location is root_real or below it (symlinks
 * resolved).  False when it cannot be resolved.
 */
bool walk_inside(const char *root_real, const char *path);

#endif
