/*
 * knn.h - nearest-neighbour index over descriptor vectors (FAISS C API).
 *
 * A struct knn owns one FAISS index over n vectors of dimension d, each
 * carrying a stable int64 id (the archive's reference id, never a row
 * number).  Distances are squared L2, as the descriptors are built so that
 * squared L2 on the whole vector is the weighted sum of the per-block
 * squared distances.
 *
 * Which index (docs/search.md has the measurements behind the choice):
 *   n <= exact_max (KNN_EXACT_MAX)   "IDMap2,Flat": exact, no training.
 *   n >  exact_max                   "IVF<nlist>,Flat" with nlist about
 *                                    2*sqrt(n), k-means trained on a
 *                                    sample; nprobe tuned at build time
 *                                    (faiss_ParameterSpace) until recall@10
 *                                    on held-out references reaches
 *                                    tune_recall.  The tuned nprobe is
 *                                    stored in the index file.
 * A FAISS index_factory string in knn_opts overrides the choice (HNSW
 * graphs are supported that way and tuned on efSearch).
 *
 * Searching: knn_search() takes many queries in one call (FAISS gives one
 * OpenMP thread per query), so callers with several queries pass them
 * together.  An exact index is built and stored by FAISS but searched by
 * knn_exact_search(), an own OpenMP + SIMD scan over FAISS's storage:
 * Debian's generic FAISS build scans 6-8x slower (docs/search.md).
 *
 * Errors: FAISS failures return ERR_FAISS with faiss_get_last_error()
 * copied into struct err at once (it is valid only until the next FAISS
 * call on the same thread).
 */
#ifndef REFSCAN_KNN_H
#define REFSCAN_KNN_H

#include <stddef.h>
#include <stdint.h>

struct err;

/* At or below this many vectors the index is exact (flat). */
#define KNN_EXACT_MAX 20000u
/* Largest dimension accepted (FAISS takes an int; descriptors are ~256). */
#define KNN_MAX_DIM 65536u
/* Largest k for one search. */
#define KNN_MAX_K 100000u
/* Recall@10 the build-time tuning aims at on its held-out sample. */
#define KNN_TUNE_RECALL 0.995
/* The k used when tuning and when quoting recall. */
#define KNN_TUNE_K 10u

enum knn_kind {
	KNN_AUTO = 0,  /* knn_opts only: choose from n */
	KNN_EXACT = 1, /* IDMap2 over a flat L2 index */
	KNN_IVF = 2,   /* IVF, Flat codes; tuned on nprobe */
	KNN_GRAPH = 3  /* IDMap2 over HNSW; tuned on efSearch */
};

enum knn_read_flags {
	KNN_READ_MMAP = 1 << 0 /* map IVF lists from the file, read-only */
};

struct knn_opts {
	enum knn_kind kind;  /* KNN_AUTO, or force one kind */
	const char *factory; /* FAISS index_factory string, NULL = from kind */
	size_t exact_max;    /* KNN_AUTO: exact at or below (0 = KNN_EXACT_MAX) */
	size_t nlist;        /* IVF lists (0 = about 2*sqrt(n)) */
	size_t train_max;    /* k-means sample cap (0 = 64 per list) */
	size_t n_tune;       /* held-out tuning queries (0 = 256), <= n / 20 */
	double tune_recall;  /* recall@10 target (0 = KNN_TUNE_RECALL) */
	uint64_t seed;       /* sampling seed for training and tuning */
};

/* Where knn_build() spent its time (wall seconds), for progress and bench. */
struct knn_build_stats {
	double train_s;  /* k-means on the training sample */
	double add_s;    /* adding vectors (IVF: assigning them to lists) */
	double tune_s;   /* exact ground truth + the parameter ladder */
	size_t n_train;  /* training vectors */
	size_t n_tune;   /* held-out tuning queries */
};

struct knn {
	void *index;          /* FaissIndex *, owned */
	size_t d;             /* dimension */
	size_t n;             /* vectors in the index */
	enum knn_kind kind;
	char param_name[16];  /* "nprobe", "efSearch", or "" for exact */
	double param;         /* its value (stored in the index file) */
	double tuned_recall;  /* recall@10 measured by tuning, -1 if none */
	size_t nlist;         /* IVF lists, 0 otherwise */
	const float *flat;    /* KNN_EXACT: FAISS's n * d storage, borrowed */
	const int64_t *flat_ids; /* KNN_EXACT: FAISS's id map, borrowed */
	struct knn_build_stats stats; /* zero after knn_read() */
};

/* Fill o with the defaults (KNN_AUTO, thresholds from the macros above). */
void knn_opts_init(struct knn_opts *o);

/* A zero, empty index: safe to knn_release(). */
void knn_init(struct knn *k);

/*
 * Build an index over n vectors (row-major n * d floats) with ids (n
 * distinct values >= 0; -1 is FAISS's "no result").  opts NULL means the
 * defaults.  Above exact_max this trains, adds and tunes (see the top of
 * this file); it can take seconds at a million vectors and uses all
 * OpenMP threads.  vecs and ids are copied; the caller keeps them.
 * Returns 0, or ERR_FORMAT (non-finite component, bad or duplicate id:
 * the row is named), ERR_LIMIT (d), ERR_NOMEM, ERR_FAISS.  On failure k is
 * left empty.  Free with knn_release().
 */
int knn_build(struct knn *k, size_t d, size_t n, const float *vecs,
	      const int64_t *ids, const struct knn_opts *opts, struct err *e);

/*
 * Search nq queries (row-major nq * d) for their kk nearest neighbours.
 * OUT: dist (nq * kk squared L2, ascending per query) and ids (nq * kk;
 * -1 and +inf pad a row when fewer than kk are found).  Thread-safe for
 * concurrent readers of one index.  Returns 0, ERR_LIMIT (kk), ERR_FAISS.
 */
int knn_search(const struct knn *k, size_t nq, const float *q, size_t kk,
	       float *dist, int64_t *ids, struct err *e);

/*
 * knn_search() through faiss_Index_search() for every kind, exact ones
 * included: the peer the own scan is measured against, and the proof in
 * tests that FAISS's own search agrees.
 */
int knn_search_faiss(const struct knn *k, size_t nq, const float *q,
		     size_t kk, float *dist, int64_t *ids, struct err *e);

/*
 * Set a FAISS search parameter by name through faiss_ParameterSpace
 * ("nprobe" for IVF, "efSearch" for graphs).  Returns 0 or ERR_FAISS (an
 * unknown name for this index is FAISS's own error).
 */
int knn_set_param(struct knn *k, const char *name, double value,
		  struct err *e);

/*
 * Write the index to path (created or truncated; the caller renames into
 * place for atomicity).  Returns 0, ERR_IO (strerror kept) or ERR_FAISS;
 * e->path is set to path on failure.
 */
int knn_write(const struct knn *k, const char *path, struct err *e);

/*
 * Read an index written by knn_write().  expect_d > 0 checks the
 * dimension.  KNN_READ_MMAP maps an IVF index's lists from the file,
 * read-only, so opening costs no copy and pages are shared between
 * processes; the file must not change while k is open.  Other kinds are
 * read into memory (FAISS 1.7.3 maps nothing else).
 * NOT safe on untrusted files: FAISS trusts the sizes it reads, and on a
 * read error it leaks the objects it had built (FAISS 1.7.3
 * index_read.cpp), so the archive checks the file's digest first.
 * Returns 0, ERR_IO, ERR_NOTFOUND, ERR_FAISS (FAISS rejected the bytes),
 * ERR_FORMAT (dimension mismatch), ERR_UNSUPPORTED (an index refscan did
 * not write).  Release with knn_release().
 */
int knn_read(struct knn *k, const char *path, size_t expect_d,
	     enum knn_read_flags flags, struct err *e);

/* Free the FAISS index and reset k to empty; safe on an empty index. */
void knn_release(struct knn *k);

/* "exact", "ivf", "graph" or "auto". */
const char *knn_kind_name(enum knn_kind kind);

/*
 * Own exact search over caller memory: nq queries against n base vectors
 * (both row-major, dimension d), squared L2, kk best per query.  ids NULL
 * means ids are row numbers.  OUT: dist, labels as in knn_search().
 * OpenMP over base blocks (few queries) or query tiles (many); the inner
 * loop is built for AVX2/AVX-512 when the CPU has them.  Thread-safe.
 * Returns 0, ERR_LIMIT (kk), ERR_NOMEM.
 */
int knn_exact_search(const float *base, size_t n, size_t d,
		     const int64_t *ids, size_t nq, const float *q, size_t kk,
		     float *dist, int64_t *labels, struct err *e);

/* Squared L2 between two d-vectors (the kernel of knn_exact_search). */
float knn_l2sqr(const float *a, const float *b, size_t d);

/*
 * Recall@kk of approximate results against exact ones, nq queries, both
 * laid out as knn_search() writes them.  A hit counts when its id is in
 * the exact top kk, or when its distance is within 1e-5 (relative) of the
 * exact kk-th distance, so ties between equal vectors are not misses.
 * Returns the mean over queries in [0, 1].
 */
double knn_recall(size_t nq, size_t kk, const int64_t *exact_ids,
		  const float *exact_dist, const int64_t *ann_ids,
		  const float *ann_dist);

#endif
