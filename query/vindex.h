/*
 * vindex.h - the search side of a version: building its index file at
 * commit time, and opening a version for queries.
 *
 * The index file (versions/<V>.index, docs/archive-format.md) is a FAISS
 * index over every live entry's descriptor (knn.h chooses exact or ANN
 * from the count), followed by the descriptor table of
 * indexer/descstore.h.  A query opens the manifest, the table and, for an
 * ANN index, the FAISS part; an exact index is searched straight from the
 * table (knn_exact_search is the same scan FAISS's flat storage would
 * get), so small archives need no FAISS read at all.
 */
#ifndef REFSCAN_VINDEX_H
#define REFSCAN_VINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "knn.h"
#include "rank.h"
#include "../formats/manifest.h"
#include "../indexer/describe.h"
#include "../indexer/descstore.h"

struct archive_dir;
struct err;

/* Schema name recorded in the manifest's "index" for these files. */
#define VINDEX_SCHEMA "refscan-index-1"

/*
 * The build_index hook (indexer/index.h), registered by refscan.c with
 * descstore_set_builder().  ctx is the run's struct descstore_cache (may
 * be NULL).  Gathers the descriptors (descstore_collect, reusing the
 * parent version's table), builds the FAISS index with ids from
 * descstore_id(), writes it with faiss_write_index to tmp_path, appends
 * the table and fsyncs.  Returns 1 ("no index") when no entry has a
 * descriptor, 0 when written, or a negative errc (the commit is then
 * abandoned).
 */
int vindex_build(void *ctx, struct archive_dir *a, const struct manifest *m,
		 const char *tmp_path, const char **schema, struct err *e);

/* A version opened for queries. */
struct vindex {
	uint64_t version;
	struct manifest m;
	struct descstore_table t;   /* rows sorted by id */
	struct knn knn;             /* ANN index; empty (index NULL) when exact */
	size_t *entry;              /* per row: index into m.entries */
	float *size_mm;             /* per row: largest extent in mm, NAN unknown */
	bool *colour;               /* per row: the reference has colour */
	double scale[RANK_MAX_BLOCKS]; /* rank_calibrate() */
	float *mean;                /* dim, rank_calibrate() */
	struct rank_block blocks[DESC_N_BLOCKS];
	struct rank_cue cues[RANK_MAX_CUES]; /* the robust order's (describe_cues) */
	struct rank_layout layout;
	struct ref_table refs;      /* over t, with the meta callback below */
	size_t n_skipped;           /* entries without a current descriptor (reindex) */
	size_t n_undescribable;     /* entries too thin to describe: never searched */
	/* for the meta callback: list values match when one element equals */
	const struct rank_filter *filters;
	size_t n_filters;
	char metabuf[512];
};

/*
 * Open version v of a (0 = HEAD).  ERR_NOTFOUND with a hint when there
 * is no such version or it has no search index (an archive indexed
 * before descriptors existed: run `refscan reindex`; or one whose every
 * scan is too thin to describe).  Entries without descriptors are not
 * references: those found undescribable with this refscan's schema are
 * counted in n_undescribable, the others in n_skipped.  Release with
 * vindex_release().
 */
int vindex_open(struct vindex *vx, struct archive_dir *a, uint64_t v,
		struct err *e);
void vindex_release(struct vindex *vx);

/* The manifest entry of a table row. */
const struct manifest_entry *vindex_entry(const struct vindex *vx, size_t row);

/*
 * Path of an entry relative to the source root it was indexed from
 * (the archive path without its label).  Borrowed from en.
 */
const char *vindex_rel_path(const struct manifest_entry *en);

#endif
