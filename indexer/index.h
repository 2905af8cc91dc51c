/*
 * index.h - `refscan index`: bring the archive up to date with source
 * trees, committing at most one new version.
 *
 * Pipeline (index.c):
 *   1. lock the archive, clean an interrupted run's leftovers
 *   2. walk each source (walk.c), pick scan files by extension
 *   3. classify each file against HEAD's manifest by (size, mtime,
 *      inode) of the scan, its MTL, textures and sidecar   [parallel]
 *   4. hash what changed; read and validate new or changed scans with
 *      scan_read_file(), collect their files, sidecar metadata and
 *      stats, then run the describe hook on each                 [parallel]
 *   5. write the new blobs, in digest order, to one new volume
 *   6. build the per-version index file (build_index hook)
 *   7. write the manifest, then switch HEAD
 * A scan that fails at 4 is reported and kept out of the version; if
 * the archive held an earlier good copy of it, that copy stays.  A scan
 * that reads but is too thin to describe (the describe hook returns
 * ERR_UNDESCRIBABLE) is no failure: it is stored without descriptors,
 * marked in its entry (undesc) and reported once, as a warning, by the
 * run that stores it.
 */
#ifndef REFSCAN_INDEX_H
#define REFSCAN_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

struct scan;
struct archive_dir;
struct manifest;
struct manifest_entry;

/*
 * Extension points for descriptors and the search index; NULL members
 * mean "no such step".
 */
struct index_hooks {
	/*
	 * Schema id of what describe() writes ("refscan-desc-2").  Entries
	 * whose descriptors carry another schema (or none) are read again
	 * so that every entry of the new version is described the same way.
	 */
	const char *desc_schema;
	/*
	 * Compute the descriptors of one scan that has just been read and
	 * validated.  en holds its archive path, units, metadata and stats
	 * (the descriptors field is not yet set); the hook may add keys to
	 * en->stats and warnings to s (decoding textures can warn).  Put a
	 * buffer from xmalloc() in *out (*len bytes); it is stored as a blob.
	 * Called from OpenMP workers, once per scan, concurrently: must be
	 * thread-safe.  ERR_UNDESCRIBABLE stores the scan without
	 * descriptors, e->msg being the reason ("3 usable points, a
	 * descriptor needs 16"); any other negative return fails that scan,
	 * with e as the reason.
	 */
	int (*describe)(void *ctx, struct scan *s, struct manifest_entry *en,
			unsigned char **out, size_t *len, struct err *e);
	/*
	 * Build the per-version index file at tmp_path from m, the complete
	 * manifest about to be committed (every entry's descriptors are
	 * readable with archive_dir_read_blob(a, ...): the new volume is
	 * already in place).  Set *schema (a static string).  Return 0 when
	 * the file was written, 1 for "no index this time", or a negative
	 * errc, which aborts the commit.
	 */
	int (*build_index)(void *ctx, struct archive_dir *a,
			   const struct manifest *m, const char *tmp_path,
			   const char **schema, struct err *e);
	void *ctx;
};

/*
 * The hooks `refscan index` runs with are descstore_hooks()
 * (descstore.h): describe every scan, build the search index.
 */

struct index_options {
	const char *archive;       /* archive directory (resolved) */
	size_t n_sources;
	char *const *sources;      /* source directories as given */
	int jobs;                  /* worker threads, 0 = OpenMP default */
	bool dry_run;              /* report, write nothing, take no lock */
	bool wait;                 /* wait for the lock instead of ERR_BUSY */
	bool follow_symlinks;      /* follow links that leave the tree */
	bool progress;             /* show progress bars (TTY, no --json) */
	const char *default_units; /* for scans that do not say; "mm" */
	int level;                 /* zstd level, 0 = default */
};

struct index_failure {
	char *path;         /* as the user names it: SRC/rel */
	char *archive_path; /* label/rel, or NULL for a whole directory */
	struct err err;
	bool known;         /* failed before, unchanged since: not re-read */
};

/* A scan stored with something to say: today, that it is not searchable. */
struct index_warning {
	char *path;         /* as the user names it: SRC/rel */
	char *archive_path; /* label/rel */
	int code;           /* enum errc: ERR_UNDESCRIBABLE */
	char *message;      /* "not searchable: 3 usable points, a descriptor needs 16" */
};

struct index_result {
	uint64_t version;   /* HEAD after the run (0: the archive is empty) */
	bool committed;     /* a new version was written */
	uint64_t added, changed, removed, unchanged, touched, redescribed;
	size_t n_failed;
	struct index_failure *failed; /* sorted by path */
	size_t n_warnings;
	struct index_warning *warnings; /* stored this run, not searchable; by path */
	uint64_t new_blobs, new_bytes; /* stored by this run */
	uint64_t volume;    /* volume written, 0 if none */
	size_t n_cleaned;   /* leftover files of an interrupted run removed */
	size_t n_notes;
	char **notes;       /* walk notes, "PATH: message" */
};

void index_options_init(struct index_options *o);
void index_result_release(struct index_result *r);

/*
 * Build version m's search index through h->build_index (nothing when the
 * hook is NULL or declines): written to a temporary name, hashed, renamed
 * into versions/, described in m->index.  Used by index and reindex.
 */
int index_put_search_index(struct archive_dir *a, const struct index_hooks *h,
			   struct manifest *m, struct err *e);

/*
 * Run the pipeline above.  Returns 0 when the run finished (failed scans
 * are in r->failed, not an error) or a negative errc when it could not:
 * ERR_BUSY (locked), ERR_NOTFOUND (a source is missing), ERR_IO...; in
 * that case nothing was committed.  h may be NULL (no hooks).
 */
int index_run(const struct index_options *o, const struct index_hooks *h,
	      struct index_result *r, struct err *e);

#endif
