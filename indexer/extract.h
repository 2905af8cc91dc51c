/*
 * extract.h - restore archived files, byte-identical, below a directory
 * (the engine of `refscan extract`, also used by `refscan query
 * --extract` and `refscan reindex`).
 */
#ifndef REFSCAN_EXTRACT_H
#define REFSCAN_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/sha256.h"

struct archive_dir;
struct err;

/* One file to restore. */
struct extract_file {
	unsigned char digest[SHA256_LEN]; /* its blob */
	uint64_t size;       /* bytes */
	const char *path;    /* relative path below the destination (borrowed) */
	uint32_t mode;       /* permission bits */
	int64_t mtime_ns;    /* restored modification time */
};

/*
 * Restore n files of archive a under dest (created if missing), each
 * hashed while written; paths are checked with volume_path_safe() and
 * written through libarchive's secure disk writer, so nothing lands
 * outside dest.  Each volume is streamed once.  A file that cannot be
 * restored is reported on stderr ("refscan: PATH: reason") and counted in
 * *n_failed; it is not an error.  Changes the working directory while
 * it runs and restores it.  Returns 0, or ERR_IO (dest cannot be made
 * or entered), ERR_NOTFOUND (the archive was pruned meanwhile), ERR_NOMEM.
 */
int extract_files(struct archive_dir *a, const struct extract_file *files,
		  size_t n, const char *dest, size_t *n_restored,
		  size_t *n_failed, struct err *e);

/*
 * A private directory to restore files into for a while (mode 0700):
 * $TMPDIR (else /tmp) + "/refscan-<what>.XXXXXX", written to path (n
 * bytes).  Returns 0 or ERR_IO (e names it).
 */
int extract_tmpdir(const char *what, char *path, size_t n, struct err *e);

/* Remove such a directory and everything below it (symlinks not followed). */
void extract_tmpdir_remove(const char *path);

#endif
