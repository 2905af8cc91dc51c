/*
 * knn.c - nearest-neighbour index over descriptors, on the FAISS C API
 * (see knn.h; measurements and the index choice in docs/search.md).
 *
 * Invariants:
 *   - every FAISS call that fails is followed at once by faiss_fail(),
 *     which copies faiss_get_last_error() before any other FAISS call;
 *   - a struct knn is either empty (index NULL) or holds an index of the
 *     recorded kind, dimension and size;
 *   - ids given to FAISS are >= 0 and distinct, so -1 in a result is
 *     always FAISS's "no result".
 *
 * FAISS reference: https://github.com/facebookresearch/faiss/wiki
 * (index_factory strings, IndexIVF nprobe, IndexHNSW efSearch, I/O flags).
 */
#include "knn.h"
#include "knn_int.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "alloc.h"
#include "err.h"

#include "banned.h"

/* k-means points per IVF list by default (FAISS warns below 39). */
#define TRAIN_PER_LIST 64u
/* Held-out references used to tune nprobe / efSearch. */
#define TUNE_QUERIES 256u
/* efSearch ladder for graphs: 16, 32, ... up to this. */
#define GRAPH_EF_MAX 4096.0
/* Rows per block in the exact scan: 1024 * 256 floats = 1 MiB, in L2. */
#define SCAN_BLOCK 1024u
/* Queries per tile when many queries are scanned together. */
#define SCAN_TILE 16u
/*
 * Components below which a scan stays on one thread (16 MiB, ~1.5 ms).
 * Smaller work gains little from a second thread, and a parallel region
 * costs a scheduler time slice (~20 ms measured) when the machine is
 * oversubscribed and the other thread has to wait for a CPU.
 */
#define SCAN_PARALLEL_MIN ((size_t)1 << 22)

/*
 * FAISS's C++ IO_FLAG_MMAP (index_io.h: IO_FLAG_SKIP_IVF_DATA | 0x646f0000,
 * which selects the "ilod" hook that maps ArrayInvertedLists as read-only
 * OnDiskInvertedLists).  The C header's FAISS_IO_FLAG_MMAP is 1, a value
 * FAISS 1.7.3 ignores, so the C++ value is passed through instead; the
 * C API hands io_flags to faiss::read_index unchanged.
 */
#define FAISS_CXX_IO_FLAG_MMAP (0x8 | 0x646f0000)

/*
 * Record the pending FAISS error.  what names the operation; the FAISS
 * text follows it.  Call straight after the failing FAISS call.
 */
static int faiss_fail(struct err *e, const char *what)
{
	const char *m = faiss_get_last_error();
	return err_set(e, ERR_FAISS, "%s: %s", what,
		       m && *m ? m : "unknown faiss error");
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t knn_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

const char *knn_kind_name(enum knn_kind kind)
{
	switch (kind) {
	case KNN_EXACT: return "exact";
	case KNN_IVF: return "ivf";
	case KNN_GRAPH: return "graph";
	default: return "auto";
	}
}

void knn_opts_init(struct knn_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = KNN_AUTO;
	o->exact_max = KNN_EXACT_MAX;
	o->tune_recall = KNN_TUNE_RECALL;
	o->n_tune = TUNE_QUERIES;
	o->seed = 0x7265667363616eu;
}

void knn_init(struct knn *k)
{
	memset(k, 0, sizeof(*k));
	k->tuned_recall = -1;
}

void knn_release(struct knn *k)
{
	if (k->index)
		faiss_Index_free(k->index);
	knn_init(k);
}

/*
 * Heap order: a is worse than b when its distance is larger, or equal
 * with a larger id.  NaN never reaches here (inputs are checked finite).
 */
static int worse(float da, int64_t ia, float db, int64_t ib)
{
	return da > db || (da == db && ia > ib);
}

static void sift_down(float *hd, int64_t *hi, size_t size, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < size && worse(hd[l], hi[l], hd[m], hi[m]))
			m = l;
		if (r < size && worse(hd[r], hi[r], hd[m], hi[m]))
			m = r;
		if (m == i)
			return;
		float td = hd[i];
		int64_t ti = hi[i];
		hd[i] = hd[m];
		hi[i] = hi[m];
		hd[m] = td;
		hi[m] = ti;
		i = m;
	}
}

void knn_heap_push(float *hd, int64_t *hi, size_t *size, size_t kk,
		   float d, int64_t id)
{
	size_t n = *size;
	if (n < kk) {
		size_t i = n;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!worse(d, id, hd[p], hi[p]))
				break;
			hd[i] = hd[p];
			hi[i] = hi[p];
			i = p;
		}
		hd[i] = d;
		hi[i] = id;
		*size = n + 1;
		return;
	}
	if (!kk || !worse(hd[0], hi[0], d, id))
		return;
	hd[0] = d;
	hi[0] = id;
	sift_down(hd, hi, n, 0);
}

void knn_heap_finish(float *hd, int64_t *hi, size_t size, size_t kk)
{
	/* heap sort: move the worst to the end, shrink */
	for (size_t n = size; n > 1; n--) {
		float td = hd[0];
		int64_t ti = hi[0];
		hd[0] = hd[n - 1];
		hi[0] = hi[n - 1];
		hd[n - 1] = td;
		hi[n - 1] = ti;
		sift_down(hd, hi, n - 1, 0);
	}
	for (size_t i = size; i < kk; i++) {
		hd[i] = INFINITY;
		hi[i] = -1;
	}
}

/*
 * The exact kernel.  target_clones builds AVX-512 and AVX2+FMA variants
 * picked at load time: the base x86-64 build would be SSE2 only, which is
 * what makes Debian's generic FAISS flat scan slow (docs/search.md).
 */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
float knn_l2sqr(const float *a, const float *b, size_t d)
{
	float s = 0.0f;
#pragma omp simd reduction(+ : s)
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - b[i];
		s += t * t;
	}
	return s;
}

/* Few queries: threads split the base, each with its own heaps. */
static int scan_split_base(const float *base, size_t n, size_t d,
			   const int64_t *ids, size_t nq, const float *q,
			   size_t kk, float *dist, int64_t *labels,
			   struct err *e)
{
	int nt = omp_get_max_threads();
	size_t nth = nt > 0 ? (size_t)nt : 1;
	size_t slots, cells;
	int rc = 0;
	if (ckd_mul(&slots, nth, nq) || ckd_mul(&cells, slots, kk))
		return err_set(e, ERR_NOMEM, "exact scan: %zu queries x %zu results too large", nq, kk);
	float *hd = alloc_array(cells, sizeof(*hd));
	int64_t *hi = alloc_array(cells, sizeof(*hi));
	size_t *hs = alloc_array_zero(slots, sizeof(*hs));
	if (!hd || !hi || !hs) {
		rc = err_set(e, ERR_NOMEM, "exact scan: out of memory for %zu heaps of %zu", slots, kk);
		goto out;
	}
	size_t nblocks = (n + SCAN_BLOCK - 1) / SCAN_BLOCK;
	int par = n * d * nq >= SCAN_PARALLEL_MIN;
#pragma omp parallel num_threads(nt) if (par)
	{
		size_t t = (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
		for (size_t b = 0; b < nblocks; b++) {
			size_t r0 = b * SCAN_BLOCK;
			size_t r1 = r0 + SCAN_BLOCK < n ? r0 + SCAN_BLOCK : n;
			for (size_t j = 0; j < nq; j++) {
				size_t slot = t * nq + j;
				float *sd = hd + slot * kk;
				int64_t *si = hi + slot * kk;
				const float *qj = q + j * d;
				for (size_t r = r0; r < r1; r++) {
					float dd = knn_l2sqr(qj, base + r * d, d);
					knn_heap_push(sd, si, &hs[slot], kk, dd,
						      ids ? ids[r] : (int64_t)r);
				}
			}
		}
	}
	for (size_t j = 0; j < nq; j++) {
		float *od = dist + j * kk;
		int64_t *oi = labels + j * kk;
		size_t size = 0;
		for (size_t t = 0; t < nth; t++) {
			size_t slot = t * nq + j;
			for (size_t c = 0; c < hs[slot]; c++)
				knn_heap_push(od, oi, &size, kk,
					      hd[slot * kk + c], hi[slot * kk + c]);
		}
		knn_heap_finish(od, oi, size, kk);
	}
out:
	xfree(hs);
	xfree(hi);
	xfree(hd);
	return rc;
}

/*
 * Many queries: threads take tiles of queries and the output rows are the
 * heaps.  A base block stays in cache while the tile's queries pass over
 * it, so the base is read nq / SCAN_TILE times, not nq times.
 */
static void scan_split_queries(const float *base, size_t n, size_t d,
			       const int64_t *ids, size_t nq, const float *q,
			       size_t kk, float *dist, int64_t *labels)
{
	size_t ntiles = (nq + SCAN_TILE - 1) / SCAN_TILE;
	int par = n * d * nq >= SCAN_PARALLEL_MIN;
#pragma omp parallel for schedule(dynamic, 1) if (par)
	for (size_t t = 0; t < ntiles; t++) {
		size_t q0 = t * SCAN_TILE;
		size_t q1 = q0 + SCAN_TILE < nq ? q0 + SCAN_TILE : nq;
		size_t hs[SCAN_TILE] = { 0 };
		for (size_t r0 = 0; r0 < n; r0 += SCAN_BLOCK) {
			size_t r1 = r0 + SCAN_BLOCK < n ? r0 + SCAN_BLOCK : n;
			for (size_t j = q0; j < q1; j++) {
				const float *qj = q + j * d;
				for (size_t r = r0; r < r1; r++) {
					float dd = knn_l2sqr(qj, base + r * d, d);
					knn_heap_push(dist + j * kk, labels + j * kk,
						      &hs[j - q0], kk, dd,
						      ids ? ids[r] : (int64_t)r);
				}
			}
		}
		for (size_t j = q0; j < q1; j++)
			knn_heap_finish(dist + j * kk, labels + j * kk,
					hs[j - q0], kk);
	}
}

int knn_exact_search(const float *base, size_t n, size_t d,
		     const int64_t *ids, size_t nq, const float *q, size_t kk,
		     float *dist, int64_t *labels, struct err *e)
{
	if (kk == 0 || kk > KNN_MAX_K)
		return err_set(e, ERR_LIMIT, "exact scan: k %zu out of range (1..%u)", kk, KNN_MAX_K);
	if (!nq)
		return 0;
	int nt = omp_get_max_threads();
	if (nq >= 2 * (size_t)(nt > 0 ? nt : 1)) {
		scan_split_queries(base, n, d, ids, nq, q, kk, dist, labels);
		return 0;
	}
	return scan_split_base(base, n, d, ids, nq, q, kk, dist, labels, e);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Finite components, ids >= 0 and distinct; names the offending row. */
static int check_input(size_t d, size_t n, const float *vecs,
		       const int64_t *ids, struct err *e)
{
	size_t bad = SIZE_MAX;
	/*
	 * One pass over n * d floats; the reduction keeps the first bad row
	 * so the message does not depend on the thread count.
	 */
	int par = n * d >= SCAN_PARALLEL_MIN;
#pragma omp parallel for reduction(min : bad) schedule(static) if (par)
	for (size_t r = 0; r < n; r++) {
		const float *v = vecs + r * d;
		for (size_t c = 0; c < d; c++) {
			if (!isfinite(v[c])) {
				bad = r < bad ? r : bad;
				break;
			}
		}
	}
	if (bad != SIZE_MAX) {
		size_t c = 0;
		while (c < d && isfinite(vecs[bad * d + c]))
			c++;
		return err_set(e, ERR_FORMAT, "row %zu: component %zu is not finite", bad, c);
	}
	for (size_t r = 0; r < n; r++)
		if (ids[r] < 0)
			return err_set(e, ERR_FORMAT, "row %zu: id %lld is negative", r, (long long)ids[r]);
	int64_t *s = alloc_array(n, sizeof(*s));
	if (!s && n)
		return err_set(e, ERR_NOMEM, "out of memory checking %zu ids", n);
	if (n)
		memcpy(s, ids, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_i64);
	int64_t dup = -1;
	for (size_t i = 1; i < n && dup < 0; i++)
		if (s[i] == s[i - 1])
			dup = s[i];
	xfree(s);
	if (dup >= 0) {
		size_t first = SIZE_MAX, second = SIZE_MAX;
		for (size_t r = 0; r < n && second == SIZE_MAX; r++) {
			if (ids[r] != dup)
				continue;
			if (first == SIZE_MAX)
				first = r;
			else
				second = r;
		}
		return err_set(e, ERR_FORMAT, "id %lld appears at rows %zu and %zu",
			       (long long)dup, first, second);
	}
	return 0;
}

/* Default IVF list count: 2 * sqrt(n), at least 16 (docs/search.md). */
static size_t auto_nlist(size_t n)
{
	size_t l = (size_t)(2.0 * sqrt((double)n) + 0.5);
	return l < 16 ? 16 : l;
}

/*
 * First m entries of a seeded random permutation of 0..n-1 (partial
 * Fisher-Yates), sorted so sampled rows are read in memory order.
 */
static size_t *sample_rows(size_t n, size_t m, uint64_t seed)
{
	size_t *p = alloc_array(n, sizeof(*p));
	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = i;
	uint64_t st = seed;
	for (size_t i = 0; i < m && i + 1 < n; i++) {
		size_t j = i + (size_t)(knn_rand(&st) % (uint64_t)(n - i));
		size_t t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}

static float *gather(const float *vecs, size_t d, const size_t *rows, size_t m)
{
	float *g = alloc_array(m, d * sizeof(float));
	if (!g)
		return NULL;
	for (size_t i = 0; i < m; i++)
		memcpy(g + i * d, vecs + rows[i] * d, d * sizeof(float));
	return g;
}

int knn_set_param(struct knn *k, const char *name, double value, struct err *e)
{
	FaissParameterSpace *ps = NULL;
	if (!k->index)
		return err_set(e, ERR_INTERNAL, "set '%s': no index", name);
	if (faiss_ParameterSpace_new(&ps))
		return faiss_fail(e, "parameter space");
	int rc = 0;
	if (faiss_ParameterSpace_set_index_parameter(ps, k->index, name, value)) {
		rc = faiss_fail(e, "set search parameter");
		goto out;
	}
	if (!strcmp(name, k->param_name))
		k->param = value;
out:
	faiss_ParameterSpace_free(ps);
	return rc;
}

/*
 * Search-effort ladder: 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two
 * and 1.5 times them), fine enough that the tuned value is at most 1.5x
 * the cheapest one meeting the target.
 */
static double ladder(unsigned step)
{
	if (step == 0)
		return 1.0;
	if (step % 2)
		return ldexp(1.0, (int)((step + 1) / 2));
	return 1.5 * ldexp(1.0, (int)(step / 2));
}

/* Extra exact neighbours fetched so that dropping held-out ones leaves k. */
#define TUNE_SPARE 8u

static int has_id(const int64_t *sorted, size_t n, int64_t id)
{
	return bsearch(&id, sorted, n, sizeof(*sorted), cmp_i64) != NULL;
}

/*
 * Raise nprobe / efSearch along ladder() from the cheapest value until
 * recall@KNN_TUNE_K reaches the target, and keep that value (FAISS stores
 * it in the index file).  The queries are the held-out rows: references
 * not yet added to the index, so they behave like a new scan (a query
 * that is itself in the index is found too easily, by a graph above all).
 * Their exact neighbours come from the whole set minus the held-out rows.
 */
static int tune(struct knn *k, const float *vecs, size_t n, const int64_t *ids,
		const size_t *held, size_t nt, double target, struct err *e)
{
	const size_t kk = KNN_TUNE_K, kq = KNN_TUNE_K + TUNE_SPARE;
	size_t cells, cq;
	int rc = 0;
	float *q = NULL, *gd = NULL, *ad = NULL, *ed = NULL;
	int64_t *gi = NULL, *ai = NULL, *ei = NULL, *hid = NULL;
	if (ckd_mul(&cells, nt, kk) || ckd_mul(&cq, nt, kq))
		return err_set(e, ERR_NOMEM, "tuning: size overflow");
	q = gather(vecs, k->d, held, nt);
	gd = alloc_array(cq, sizeof(*gd));
	gi = alloc_array(cq, sizeof(*gi));
	ad = alloc_array(cells, sizeof(*ad));
	ai = alloc_array(cells, sizeof(*ai));
	ed = alloc_array(cells, sizeof(*ed));
	ei = alloc_array(cells, sizeof(*ei));
	hid = alloc_array(nt, sizeof(*hid));
	if (!q || !gd || !gi || !ad || !ai || !ed || !ei || !hid) {
		rc = err_set(e, ERR_NOMEM, "tuning: out of memory for %zu queries", nt);
		goto out;
	}
	for (size_t j = 0; j < nt; j++)
		hid[j] = ids[held[j]];
	qsort(hid, nt, sizeof(*hid), cmp_i64);
	rc = knn_exact_search(vecs, n, k->d, ids, nt, q, kq, gd, gi, e);
	if (rc)
		goto out;
	for (size_t j = 0; j < nt; j++) {
		size_t o = 0;
		for (size_t i = 0; i < kq && o < kk; i++) {
			if (gi[j * kq + i] < 0 || has_id(hid, nt, gi[j * kq + i]))
				continue;
			ed[j * kk + o] = gd[j * kq + i];
			ei[j * kk + o] = gi[j * kq + i];
			o++;
		}
		knn_heap_finish(ed + j * kk, ei + j * kk, o, kk); /* pads */
	}

	double vmax = k->kind == KNN_IVF ? (double)k->nlist : GRAPH_EF_MAX;
	for (unsigned step = k->kind == KNN_IVF ? 0 : 7;; step++) {
		double v = ladder(step);
		if (v > vmax)
			v = vmax;
		rc = knn_set_param(k, k->param_name, v, e);
		if (rc)
			goto out;
		rc = knn_search(k, nt, q, kk, ad, ai, e);
		if (rc)
			goto out;
		k->tuned_recall = knn_recall(nt, kk, ei, ed, ai, ad);
		if (k->tuned_recall >= target || v >= vmax)
			break;
	}
out:
	xfree(hid);
	xfree(ei);
	xfree(ed);
	xfree(ai);
	xfree(ad);
	xfree(gi);
	xfree(gd);
	xfree(q);
	return rc;
}

/*
 * Add every row except the sorted held-out ones, without copying the set.
 * IVF: add all in one call, then remove the held-out ids (one pass over
 * the lists).  Others (HNSW cannot remove): add the runs between them;
 * a graph adds one vector at a time anyway.  Many small IVF adds would
 * each assign through BLAS and OpenMP, which is slow under load.
 */
static int add_except(FaissIndex *ix, enum knn_kind kind, size_t d, size_t n,
		      const float *vecs, const int64_t *ids, const size_t *held,
		      size_t nh, struct err *e)
{
	/* only a bare IVF: IDMap2's remove_ids assumes order-keeping removal */
	if ((kind == KNN_IVF && faiss_IndexIVF_cast(ix)) || !nh) {
		if (n && faiss_Index_add_with_ids(ix, (idx_t)n, vecs, ids))
			return faiss_fail(e, "add");
		if (!nh)
			return 0;
		int64_t *hid = alloc_array(nh, sizeof(*hid));
		if (!hid)
			return err_set(e, ERR_NOMEM, "out of memory for %zu held-out ids", nh);
		for (size_t i = 0; i < nh; i++)
			hid[i] = ids[held[i]];
		FaissIDSelectorBatch *sel = NULL;
		size_t removed = 0;
		int rc = 0;
		if (faiss_IDSelectorBatch_new(&sel, nh, hid))
			rc = faiss_fail(e, "id selector");
		else if (faiss_Index_remove_ids(ix, (const FaissIDSelector *)sel, &removed))
			rc = faiss_fail(e, "remove held-out ids");
		else if (removed != nh)
			rc = err_set(e, ERR_INTERNAL, "removed %zu of %zu held-out ids", removed, nh);
		if (sel)
			faiss_IDSelector_free((FaissIDSelector *)sel);
		xfree(hid);
		return rc;
	}
	size_t r = 0;
	for (size_t h = 0; h <= nh; h++) {
		size_t stop = h < nh ? held[h] : n;
		if (stop > r && faiss_Index_add_with_ids(ix, (idx_t)(stop - r),
							 vecs + r * d, ids + r))
			return faiss_fail(e, "add");
		r = stop + 1;
	}
	return 0;
}

/* Add the held-out rows after tuning. */
static int add_rows(FaissIndex *ix, size_t d, const float *vecs,
		    const int64_t *ids, const size_t *rows, size_t m,
		    struct err *e)
{
	float *v = gather(vecs, d, rows, m);
	int64_t *vi = alloc_array(m, sizeof(*vi));
	int rc = 0;
	if (!v || !vi) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu held-out rows", m);
		goto out;
	}
	for (size_t i = 0; i < m; i++)
		vi[i] = ids[rows[i]];
	if (faiss_Index_add_with_ids(ix, (idx_t)m, v, vi))
		rc = faiss_fail(e, "add");
out:
	xfree(vi);
	xfree(v);
	return rc;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

/* Classify a FAISS index as one of ours; 0 or ERR_UNSUPPORTED. */
static int classify(struct knn *k, FaissIndex *ix, struct err *e)
{
	FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix);
	if (ivf) {
		k->kind = KNN_IVF;
		k->nlist = faiss_IndexIVF_nlist(ivf);
		snprintf(k->param_name, sizeof(k->param_name), "nprobe");
		k->param = (double)faiss_IndexIVF_nprobe(ivf);
		return 0;
	}
	FaissIndexIDMap2 *map = faiss_IndexIDMap2_cast(ix);
	if (map) {
		FaissIndex *sub = faiss_IndexIDMap2_sub_index(map);
		FaissIndexFlat *flat = sub ? faiss_IndexFlat_cast(sub) : NULL;
		FaissIndexIVF *sivf = sub ? faiss_IndexIVF_cast(sub) : NULL;
		if (flat) {
			k->kind = KNN_EXACT;
			k->param_name[0] = '\0';
		} else if (sivf) {
			/* "IDMap2,IVF..." from a factory string: ParameterSpace
			 * reaches through the map to set nprobe */
			k->kind = KNN_IVF;
			k->nlist = faiss_IndexIVF_nlist(sivf);
			snprintf(k->param_name, sizeof(k->param_name), "nprobe");
			k->param = (double)faiss_IndexIVF_nprobe(sivf);
		} else {
			/* NEEDSWORK: the C API has no HNSW getter for efSearch */
			k->kind = KNN_GRAPH;
			snprintf(k->param_name, sizeof(k->param_name), "efSearch");
			k->param = -1;
		}
		return 0;
	}
	return err_set(e, ERR_UNSUPPORTED, "index is neither IVF nor an id-mapped index");
}

/*
 * Borrow FAISS's flat storage and id map for the own scan.  Valid until
 * the index is modified, and it never is after build or read.
 */
static int attach_flat(struct knn *k, struct err *e)
{
	FaissIndexIDMap2 *map = faiss_IndexIDMap2_cast(k->index);
	FaissIndexFlat *flat = map ? faiss_IndexFlat_cast(faiss_IndexIDMap2_sub_index(map)) : NULL;
	float *xb = NULL;
	idx_t *ids = NULL;
	size_t nx = 0, ni = 0;
	if (!flat)
		return err_set(e, ERR_INTERNAL, "exact index without flat storage");
	faiss_IndexFlat_xb(flat, &xb, &nx);
	faiss_IndexIDMap2_id_map(map, &ids, &ni);
	if (ni != k->n || nx / k->d != k->n || nx % k->d)
		return err_set(e, ERR_FORMAT, "flat index holds %zu floats and %zu ids for %zu vectors",
			       nx, ni, k->n);
	k->flat = xb;
	k->flat_ids = ids;
	return 0;
}

int knn_build(struct knn *k, size_t d, size_t n, const float *vecs,
	      const int64_t *ids, const struct knn_opts *opts, struct err *e)
{
	struct knn_opts def;
	char desc[64];
	FaissIndex *ix = NULL;
	size_t *rows = NULL;
	float *train = NULL;
	int rc = 0;

	knn_init(k);
	if (!opts) {
		knn_opts_init(&def);
		opts = &def;
	}
	if (d == 0 || d > KNN_MAX_DIM)
		return err_set(e, ERR_LIMIT, "dimension %zu out of range (1..%u)", d, KNN_MAX_DIM);
	if (n > (size_t)INT64_MAX / d)
		return err_set(e, ERR_LIMIT, "%zu vectors of dimension %zu too many", n, d);
	if (n && (!vecs || !ids))
		return err_set(e, ERR_INTERNAL, "build: no vectors or ids for %zu rows", n);
	rc = check_input(d, n, vecs, ids, e);
	if (rc)
		return rc;

	size_t exact_max = opts->exact_max ? opts->exact_max : KNN_EXACT_MAX;
	enum knn_kind kind = opts->kind;
	if (kind == KNN_AUTO)
		kind = n <= exact_max ? KNN_EXACT : KNN_IVF;
	size_t nlist = 0;
	if (opts->factory) {
		snprintf(desc, sizeof(desc), "%s", opts->factory);
	} else if (kind == KNN_IVF) {
		nlist = opts->nlist ? opts->nlist : auto_nlist(n);
		snprintf(desc, sizeof(desc), "IVF%zu,Flat", nlist);
	} else if (kind == KNN_GRAPH) {
		snprintf(desc, sizeof(desc), "IDMap2,HNSW32,Flat");
	} else {
		snprintf(desc, sizeof(desc), "IDMap2,Flat");
	}
	if (faiss_index_factory(&ix, (int)d, desc, METRIC_L2))
		return faiss_fail(e, "index factory");
	if (classify(k, ix, e)) {
		rc = err_set(e, ERR_UNSUPPORTED, "factory '%s': not an IVF or id-mapped index", desc);
		goto out;
	}
	k->index = ix;
	k->d = d;

	if (k->kind == KNN_IVF && n < k->nlist) {
		rc = err_set(e, ERR_LIMIT, "%zu vectors are too few for %zu lists", n, k->nlist);
		goto out;
	}
	int trained = faiss_Index_is_trained(ix);
	/*
	 * Held-out tuning rows: at most 1 in 20 of the set, so the index
	 * tuned without them is the index searched later.
	 */
	size_t nh = 0;
	if (k->kind != KNN_EXACT) {
		nh = opts->n_tune ? opts->n_tune : TUNE_QUERIES;
		if (nh > n / 20)
			nh = n / 20;
	}
	size_t n_train = 0;
	if (!trained) {
		size_t cap = opts->train_max;
		if (!cap && ckd_mul(&cap, k->nlist ? k->nlist : 256, (size_t)TRAIN_PER_LIST))
			cap = n;
		n_train = n < cap ? n : cap;
	}
	size_t m = n_train > nh ? n_train : nh;
	if (m) {
		rows = sample_rows(n, m, opts->seed);
		if (!rows) {
			rc = err_set(e, ERR_NOMEM, "out of memory sampling %zu rows", n);
			goto out;
		}
	}
	if (!trained) {
		train = gather(vecs, d, rows, n_train);
		if (!train) {
			rc = err_set(e, ERR_NOMEM, "out of memory for %zu training vectors", n_train);
			goto out;
		}
		double t0 = now_s();
		if (faiss_Index_train(ix, (idx_t)n_train, train)) {
			rc = faiss_fail(e, "train");
			goto out;
		}
		k->stats.train_s = now_s() - t0;
		k->stats.n_train = n_train;
		xfree(train);
		train = NULL;
	}
	/* the held-out rows are the first nh of the sample, in row order */
	if (nh)
		qsort(rows, nh, sizeof(*rows), cmp_size);
	double t_add = now_s();
	rc = add_except(ix, k->kind, d, n, vecs, ids, rows, nh, e);
	if (rc)
		goto out;
	k->stats.add_s = now_s() - t_add;
	k->n = n - nh;
	if (k->kind == KNN_EXACT) {
		k->tuned_recall = 1.0;
		rc = attach_flat(k, e);
		if (rc)
			goto out;
	} else if (nh) {
		double target = opts->tune_recall > 0 ? opts->tune_recall : KNN_TUNE_RECALL;
		double t_tune = now_s();
		rc = tune(k, vecs, n, ids, rows, nh, target, e);
		if (rc)
			goto out;
		k->stats.tune_s = now_s() - t_tune;
		k->stats.n_tune = nh;
		rc = add_rows(ix, d, vecs, ids, rows, nh, e);
		if (rc)
			goto out;
		k->n = n;
	}
out:
	xfree(train);
	xfree(rows);
	if (rc) {
		if (ix)
			faiss_Index_free(ix);
		knn_init(k);
	}
	return rc;
}

int knn_search(const struct knn *k, size_t nq, const float *q, size_t kk,
	       float *dist, int64_t *ids, struct err *e)
{
	if (!k->index)
		return err_set(e, ERR_INTERNAL, "search: no index");
	if (kk == 0 || kk > KNN_MAX_K)
		return err_set(e, ERR_LIMIT, "search: k %zu out of range (1..%u)", kk, KNN_MAX_K);
	if (!nq)
		return 0;
	if (k->kind == KNN_EXACT)
		return knn_exact_search(k->flat, k->n, k->d, k->flat_ids, nq, q,
					kk, dist, ids, e);
	return knn_search_faiss(k, nq, q, kk, dist, ids, e);
}

int knn_search_faiss(const struct knn *k, size_t nq, const float *q, size_t kk,
		     float *dist, int64_t *ids, struct err *e)
{
	if (!k->index)
		return err_set(e, ERR_INTERNAL, "search: no index");
	if (kk == 0 || kk > KNN_MAX_K)
		return err_set(e, ERR_LIMIT, "search: k %zu out of range (1..%u)", kk, KNN_MAX_K);
	if (!nq)
		return 0;
	if (faiss_Index_search(k->index, (idx_t)nq, q, (idx_t)kk, dist, ids))
		return faiss_fail(e, "search");
	/* FAISS pads with -1 and a huge finite distance; make it +inf */
	size_t cells = nq * kk;
	for (size_t i = 0; i < cells; i++)
		if (ids[i] < 0)
			dist[i] = INFINITY;
	return 0;
}

int knn_write(const struct knn *k, const char *path, struct err *e)
{
	if (!k->index)
		return err_set(e, ERR_INTERNAL, "write: no index");
	FILE *f = fopen(path, "wb");
	if (!f) {
		int rc = err_set_errno(e, ERR_IO, "cannot create index file");
		err_set_path(e, path);
		return rc;
	}
	int rc = 0;
	if (faiss_write_index(k->index, f)) {
		rc = faiss_fail(e, "write index");
		fclose(f);
		err_set_path(e, path);
		return rc;
	}
	if (fflush(f) || ferror(f)) {
		rc = err_set_errno(e, ERR_IO, "cannot write index file");
		err_set_path(e, path);
		fclose(f);
		return rc;
	}
	if (fclose(f)) {
		rc = err_set_errno(e, ERR_IO, "cannot close index file");
		err_set_path(e, path);
		return rc;
	}
	return 0;
}

int knn_read(struct knn *k, const char *path, size_t expect_d,
	     enum knn_read_flags flags, struct err *e)
{
	FaissIndex *ix = NULL;
	int rc = 0;
	knn_init(k);
	FILE *f = fopen(path, "rb");
	if (!f) {
		rc = err_set_errno(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
				   "cannot open index file");
		err_set_path(e, path);
		return rc;
	}
	int io = 0;
	if (flags & KNN_READ_MMAP)
		io |= FAISS_CXX_IO_FLAG_MMAP | FAISS_IO_FLAG_READ_ONLY;
	/* a FILE read goes through FAISS's FileIOReader, which mmap needs */
	int frc = faiss_read_index(f, io, &ix);
	if (frc)
		rc = faiss_fail(e, "read index");
	fclose(f);
	if (rc) {
		err_set_path(e, path);
		return rc;
	}
	rc = classify(k, ix, e);
	if (rc)
		goto out;
	if (faiss_Index_metric_type(ix) != METRIC_L2) {
		rc = err_set(e, ERR_UNSUPPORTED, "index metric is not L2");
		goto out;
	}
	int dd = faiss_Index_d(ix);
	idx_t nt = faiss_Index_ntotal(ix);
	if (dd <= 0 || nt < 0) {
		rc = err_set(e, ERR_FORMAT, "index has dimension %d and %lld vectors",
			     dd, (long long)nt);
		goto out;
	}
	if (expect_d && (size_t)dd != expect_d) {
		rc = err_set(e, ERR_FORMAT, "index dimension %d does not match descriptor dimension %zu",
			     dd, expect_d);
		goto out;
	}
	k->index = ix;
	k->d = (size_t)dd;
	k->n = (size_t)nt;
	k->tuned_recall = k->kind == KNN_EXACT ? 1.0 : -1.0;
	ix = NULL;
	if (k->kind == KNN_EXACT)
		rc = attach_flat(k, e);
out:
	if (rc) {
		err_set_path(e, path);
		if (ix)
			faiss_Index_free(ix);
		knn_release(k);
	}
	return rc;
}

double knn_recall(size_t nq, size_t kk, const int64_t *exact_ids,
		  const float *exact_dist, const int64_t *ann_ids,
		  const float *ann_dist)
{
	if (!nq || !kk)
		return 1.0;
	double sum = 0;
	for (size_t j = 0; j < nq; j++) {
		const int64_t *ei = exact_ids + j * kk;
		const int64_t *ai = ann_ids + j * kk;
		const float *ad = ann_dist + j * kk;
		size_t want = 0;
		while (want < kk && ei[want] >= 0)
			want++;
		if (!want) {
			sum += 1.0;
			continue;
		}
		float kth = exact_dist[j * kk + want - 1];
		float tol = kth * 1e-5f + 1e-12f;
		size_t hit = 0;
		for (size_t a = 0; a < kk; a++) {
			if (ai[a] < 0)
				continue;
			int found = 0;
			for (size_t x = 0; x < want && !found; x++)
				found = ei[x] == ai[a];
			if (found || ad[a] <= kth + tol)
				hit++;
		}
		sum += (double)(hit < want ? hit : want) / (double)want;
	}
	return sum / (double)nq;
}
