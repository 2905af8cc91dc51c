/*
 * test_faiss.c - the FAISS C API links and works, and query/knn.c wraps
 * it faithfully: exact neighbours against brute force, IVF and HNSW built
 * through index_factory, written, read back (plain and mmap) with the
 * same answers, and FAISS's own error text reaching struct err.
 */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "alloc.h"
#include "err.h"
#include "query/knn.h"

#include "banned.h"

static char tmpdir[512];

/*
 * FAISS 1.7.3's read_index() does not free the objects it built before a
 * read error (index_read.cpp says so: "the read functions that encounter
 * errors may leak memory").  The truncated-file case below reaches that
 * path on purpose; the leak is FAISS's, bounded by the file's size, and
 * the archive checks an index's digest before reading it.  This is the
 * LeakSanitizer hook for suppressions; it only matters under ASan.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:faiss::read_index\n";
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static float unif(uint64_t *s)
{
	return (float)((double)(rng(s) >> 40) / 16777216.0);
}

/* n clustered non-negative vectors: n_clusters centres, small noise. */
static float *clustered(size_t n, size_t d, size_t n_clusters, uint64_t seed)
{
	float *c = malloc(n_clusters * d * sizeof(float));
	float *v = malloc(n * d * sizeof(float));
	assert_non_null(c);
	assert_non_null(v);
	uint64_t s = seed;
	for (size_t i = 0; i < n_clusters * d; i++)
		c[i] = unif(&s);
	for (size_t r = 0; r < n; r++) {
		size_t k = (size_t)(rng(&s) % n_clusters);
		for (size_t j = 0; j < d; j++) {
			float x = c[k * d + j] + 0.15f * (unif(&s) - 0.5f);
			v[r * d + j] = x < 0 ? 0 : x;
		}
	}
	free(c);
	return v;
}

/* Brute force in double: the kk nearest ids (ties by smaller id). */
static void brute(const float *base, size_t n, size_t d, const int64_t *ids,
		  const float *q, size_t kk, int64_t *out, double *dout)
{
	double *dd = malloc(n * sizeof(double));
	unsigned char *used = calloc(n, 1);
	assert_non_null(dd);
	assert_non_null(used);
	for (size_t r = 0; r < n; r++) {
		double s = 0;
		for (size_t j = 0; j < d; j++) {
			double t = (double)q[j] - (double)base[r * d + j];
			s += t * t;
		}
		dd[r] = s;
	}
	for (size_t i = 0; i < kk; i++) {
		size_t best = SIZE_MAX;
		for (size_t r = 0; r < n; r++)
			if (!used[r] && (best == SIZE_MAX || dd[r] < dd[best] ||
					 (dd[r] == dd[best] && ids[r] < ids[best])))
				best = r;
		used[best] = 1;
		out[i] = ids[best];
		dout[i] = dd[best];
	}
	free(used);
	free(dd);
}

static void tmp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* 1 when path appears in this process's memory maps. */
static int is_mapped(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, path) != NULL;
	fclose(f);
	return found;
}

static int setup_dir(void **state)
{
	(void)state;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/test_faiss.XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The raw C API, no wrapper: IDMap2,Flat returns brute-force neighbours. */
static void test_faiss_c_api_flat_matches_brute_force(void **state)
{
	(void)state;
	const size_t n = 500, d = 24, nq = 7, kk = 5;
	float *base = clustered(n, d, 10, 1);
	float *q = clustered(nq, d, 10, 2);
	int64_t ids[500];
	for (size_t i = 0; i < n; i++)
		ids[i] = 1000 + (int64_t)i * 3;
	FaissIndex *ix = NULL;
	assert_int_equal(faiss_index_factory(&ix, (int)d, "IDMap2,Flat", METRIC_L2), 0);
	assert_int_equal(faiss_Index_add_with_ids(ix, (idx_t)n, base, ids), 0);
	assert_int_equal(faiss_Index_ntotal(ix), (idx_t)n);
	float dist[7 * 5];
	idx_t lab[7 * 5];
	assert_int_equal(faiss_Index_search(ix, (idx_t)nq, q, (idx_t)kk, dist, lab), 0);
	for (size_t j = 0; j < nq; j++) {
		int64_t want[5];
		double wd[5];
		brute(base, n, d, ids, q + j * d, kk, want, wd);
		for (size_t i = 0; i < kk; i++) {
			assert_int_equal(lab[j * kk + i], want[i]);
			assert_true(fabs(dist[j * kk + i] - wd[i]) <= 1e-4 * wd[i] + 1e-6);
		}
	}
	faiss_Index_free(ix);
	free(q);
	free(base);
}

/* The exact kind: own scan and FAISS's search agree with brute force. */
static void test_knn_exact_matches_brute_force(void **state)
{
	(void)state;
	const size_t n = 3000, d = 32, nq = 9, kk = 10;
	float *base = clustered(n, d, 30, 3);
	float *q = clustered(nq, d, 30, 4);
	int64_t *ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)(n - i) * 11; /* not row order */
	struct knn k;
	struct err e;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, NULL, &e), 0);
	assert_int_equal(k.kind, KNN_EXACT);
	assert_int_equal(k.n, n);
	float dist[9 * 10], fd[9 * 10];
	int64_t lab[9 * 10], fl[9 * 10];
	assert_int_equal(knn_search(&k, nq, q, kk, dist, lab, &e), 0);
	assert_int_equal(knn_search_faiss(&k, nq, q, kk, fd, fl, &e), 0);
	for (size_t j = 0; j < nq; j++) {
		int64_t want[10];
		double wd[10];
		brute(base, n, d, ids, q + j * d, kk, want, wd);
		for (size_t i = 0; i < kk; i++) {
			assert_int_equal(lab[j * kk + i], want[i]);
			assert_int_equal(fl[j * kk + i], want[i]);
			assert_true(fabs(dist[j * kk + i] - wd[i]) <= 1e-4 * wd[i] + 1e-6);
		}
	}
	/* one query at a time gives the batched answer */
	for (size_t j = 0; j < nq; j++) {
		float d1[10];
		int64_t l1[10];
		assert_int_equal(knn_search(&k, 1, q + j * d, kk, d1, l1, &e), 0);
		assert_memory_equal(l1, lab + j * kk, sizeof(l1));
	}
	/* more than n asked: padded with -1 and +inf */
	float *bd = malloc((n + 5) * sizeof(float));
	int64_t *bl = malloc((n + 5) * sizeof(int64_t));
	assert_int_equal(knn_search(&k, 1, q, n + 5, bd, bl, &e), 0);
	assert_true(bl[n - 1] >= 0);
	for (size_t i = n; i < n + 5; i++) {
		assert_int_equal(bl[i], -1);
		assert_true(isinf(bd[i]));
	}
	free(bl);
	free(bd);
	knn_release(&k);
	assert_null(k.index);
	free(ids);
	free(q);
	free(base);
}

/* The own scan is the same for 1 and 2 threads, and breaks ties by id. */
static void test_exact_scan_deterministic_and_ties(void **state)
{
	(void)state;
	/* big enough that both scan paths run on several threads */
	const size_t n = 300000, d = 16, nq = 40, kk = 8;
	float *base = clustered(n, d, 20, 5);
	float *q = clustered(nq, d, 20, 6);
	/* rows 10..19 equal to query 0: ten ties at distance 0 */
	for (size_t r = 10; r < 20; r++)
		memcpy(base + r * d, q, d * sizeof(float));
	static float d1[40 * 8], d2[40 * 8];
	static int64_t l1[40 * 8], l2[40 * 8];
	struct err e;
	err_init(&e);
	int saved = omp_get_max_threads();
	omp_set_num_threads(1);
	assert_int_equal(knn_exact_search(base, n, d, NULL, nq, q, kk, d1, l1, &e), 0);
	omp_set_num_threads(2);
	assert_int_equal(knn_exact_search(base, n, d, NULL, nq, q, kk, d2, l2, &e), 0);
	omp_set_num_threads(saved);
	assert_memory_equal(l1, l2, sizeof(l1));
	assert_memory_equal(d1, d2, sizeof(d1));
	for (size_t i = 0; i < kk; i++) {
		assert_int_equal(l1[i], (int64_t)(10 + i));
		assert_true(d1[i] == 0.0f);
	}
	/* few-query path (split base) equals the many-query path */
	for (size_t j = 0; j < 3; j++) {
		float sd[8];
		int64_t sl[8];
		assert_int_equal(knn_exact_search(base, n, d, NULL, 1, q + j * d, kk, sd, sl, &e), 0);
		assert_memory_equal(sl, l1 + j * kk, sizeof(sl));
	}
	assert_int_equal(knn_exact_search(base, n, d, NULL, 1, q, 0, d1, l1, &e), ERR_LIMIT);
	free(q);
	free(base);
}

/* IVF through index_factory: tuned, recall >= 0.99, same after write/read. */
static void test_knn_ivf_tuned_and_roundtrip(void **state)
{
	(void)state;
	const size_t n = 20000, d = 32, nq = 100, kk = 10;
	/* queries are fresh points of the same clusters, not in the index */
	float *base = clustered(n + nq, d, 200, 7);
	float *q = base + n * d;
	int64_t *ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i * 5 + 2;
	struct knn_opts o;
	knn_opts_init(&o);
	o.kind = KNN_IVF;
	o.nlist = 64;
	struct knn k, r, m;
	struct err e;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), 0);
	assert_int_equal(k.kind, KNN_IVF);
	assert_int_equal(k.nlist, 64);
	assert_string_equal(k.param_name, "nprobe");
	assert_true(k.param >= 1 && k.param <= 64);
	assert_true(k.tuned_recall >= KNN_TUNE_RECALL);
	/* held-out tuning rows are back in: every vector is indexed */
	assert_int_equal(faiss_Index_ntotal(k.index), (idx_t)n);
	assert_int_equal(k.stats.n_tune, n / 20 < 256 ? n / 20 : 256);

	float *ed = malloc(nq * kk * sizeof(float)), *ad = malloc(nq * kk * sizeof(float));
	int64_t *ei = malloc(nq * kk * sizeof(int64_t)), *ai = malloc(nq * kk * sizeof(int64_t));
	float *bd = malloc(nq * kk * sizeof(float));
	int64_t *bi = malloc(nq * kk * sizeof(int64_t));
	assert_int_equal(knn_exact_search(base, n, d, ids, nq, q, kk, ed, ei, &e), 0);
	assert_int_equal(knn_search(&k, nq, q, kk, ad, ai, &e), 0);
	double rec = knn_recall(nq, kk, ei, ed, ai, ad);
	assert_true(rec >= 0.99);

	char path[600];
	tmp_path(path, sizeof(path), "ivf.faiss");
	assert_int_equal(knn_write(&k, path, &e), 0);
	assert_int_equal(knn_read(&r, path, d, 0, &e), 0);
	assert_int_equal(r.kind, KNN_IVF);
	assert_int_equal(r.n, n);
	assert_int_equal(r.nlist, 64);
	assert_true(r.param == k.param); /* nprobe travels in the file */
	assert_int_equal(knn_search(&r, nq, q, kk, bd, bi, &e), 0);
	assert_memory_equal(bi, ai, nq * kk * sizeof(int64_t));
	assert_memory_equal(bd, ad, nq * kk * sizeof(float));
	assert_false(is_mapped(path));

	assert_int_equal(knn_read(&m, path, d, KNN_READ_MMAP, &e), 0);
	assert_true(is_mapped(path)); /* the lists really come from the file */
	assert_int_equal(knn_search(&m, nq, q, kk, bd, bi, &e), 0);
	assert_memory_equal(bi, ai, nq * kk * sizeof(int64_t));
	knn_release(&m);
	assert_false(is_mapped(path));

	/* a parameter change through ParameterSpace takes effect */
	assert_int_equal(knn_set_param(&r, "nprobe", 64, &e), 0);
	assert_true(r.param == 64);
	assert_int_equal(knn_search(&r, nq, q, kk, bd, bi, &e), 0);
	assert_true(knn_recall(nq, kk, ei, ed, bi, bd) >= rec);
	knn_release(&r);
	knn_release(&k);
	free(bi);
	free(bd);
	free(ai);
	free(ei);
	free(ad);
	free(ed);
	free(ids);
	free(base);
}

/* HNSW through a factory string: tuned on efSearch, same after reading. */
static void test_knn_hnsw_factory_roundtrip(void **state)
{
	(void)state;
	const size_t n = 3000, d = 16, nq = 30, kk = 10;
	float *base = clustered(n + nq, d, 30, 9);
	float *q = base + n * d;
	int64_t *ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i + 100000;
	struct knn_opts o;
	knn_opts_init(&o);
	o.factory = "IDMap2,HNSW32,Flat";
	struct knn k, r;
	struct err e;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), 0);
	assert_int_equal(k.kind, KNN_GRAPH);
	assert_string_equal(k.param_name, "efSearch");
	assert_true(k.param >= 16);
	assert_true(k.tuned_recall >= KNN_TUNE_RECALL);
	assert_int_equal(faiss_Index_ntotal(k.index), (idx_t)n);
	float ad[30 * 10], bd[30 * 10], ed[30 * 10];
	int64_t ai[30 * 10], bi[30 * 10], ei[30 * 10];
	assert_int_equal(knn_search(&k, nq, q, kk, ad, ai, &e), 0);
	assert_int_equal(knn_exact_search(base, n, d, ids, nq, q, kk, ed, ei, &e), 0);
	double rec = knn_recall(nq, kk, ei, ed, ai, ad);
	assert_true(rec >= 0.99);
	char path[600];
	tmp_path(path, sizeof(path), "hnsw.faiss");
	assert_int_equal(knn_write(&k, path, &e), 0);
	assert_int_equal(knn_read(&r, path, d, KNN_READ_MMAP, &e), 0);
	assert_int_equal(r.kind, KNN_GRAPH);
	assert_int_equal(knn_search(&r, nq, q, kk, bd, bi, &e), 0);
	assert_memory_equal(bi, ai, sizeof(ai));
	knn_release(&r);
	knn_release(&k);
	free(ids);
	free(base);
}

/* An id-mapped IVF from a factory string is tuned on nprobe too. */
static void test_knn_idmap_ivf_factory(void **state)
{
	(void)state;
	const size_t n = 4000, d = 16, nq = 40, kk = 10;
	float *base = clustered(n + nq, d, 40, 14);
	const float *q = base + n * d;
	int64_t *ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)(n - i) * 2;
	struct knn_opts o;
	knn_opts_init(&o);
	o.factory = "IDMap2,IVF32,Flat";
	struct knn k;
	struct err e;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), 0);
	assert_int_equal(k.kind, KNN_IVF);
	assert_int_equal(k.nlist, 32);
	assert_true(k.tuned_recall >= KNN_TUNE_RECALL);
	assert_int_equal(faiss_Index_ntotal(k.index), (idx_t)n);
	float ad[40 * 10], ed[40 * 10];
	int64_t ai[40 * 10], ei[40 * 10];
	assert_int_equal(knn_search(&k, nq, q, kk, ad, ai, &e), 0);
	assert_int_equal(knn_exact_search(base, n, d, ids, nq, q, kk, ed, ei, &e), 0);
	assert_true(knn_recall(nq, kk, ei, ed, ai, ad) >= 0.99);
	knn_release(&k);
	free(ids);
	free(base);
}

/* FAISS's own message reaches struct err, with ERR_FAISS. */
static void test_faiss_errors_carry_faiss_message(void **state)
{
	(void)state;
	const size_t n = 100, d = 32;
	float *base = clustered(n, d, 4, 11);
	int64_t ids[100];
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i;
	struct knn_opts o;
	struct knn k;
	struct err e;

	/* wrong dimension for the factory: 32 components in 3 sub-quantizers */
	knn_opts_init(&o);
	o.factory = "PQ3";
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), ERR_FAISS);
	assert_non_null(strstr(e.msg, "d % M == 0"));
	assert_null(k.index);

	o.factory = "NoSuchIndex";
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), ERR_FAISS);
	assert_non_null(strstr(e.msg, "could not parse index string"));

	/* a parameter the index does not have */
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, NULL, &e), 0);
	assert_int_equal(knn_set_param(&k, "nprobe", 4, &e), ERR_FAISS);
	assert_non_null(strstr(e.msg, "could not set parameter nprobe"));

	/* not an index file */
	char path[600];
	tmp_path(path, sizeof(path), "garbage.faiss");
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs("this is not a faiss index at all", f);
	fclose(f);
	struct knn r;
	err_init(&e);
	assert_int_equal(knn_read(&r, path, 0, 0, &e), ERR_FAISS);
	assert_non_null(strstr(e.msg, "not recognized"));
	assert_string_equal(e.path, path);
	assert_null(r.index);

	/* a real index cut short */
	tmp_path(path, sizeof(path), "flat.faiss");
	assert_int_equal(knn_write(&k, path, &e), 0);
	assert_int_equal(truncate(path, 1000), 0);
	err_init(&e);
	assert_int_equal(knn_read(&r, path, 0, 0, &e), ERR_FAISS);
	assert_non_null(strstr(e.msg, "read error"));

	/* refscan's own checks */
	assert_int_equal(knn_write(&k, path, &e), 0);
	err_init(&e);
	assert_int_equal(knn_read(&r, path, d + 1, 0, &e), ERR_FORMAT);
	assert_non_null(strstr(e.msg, "dimension 32 does not match"));
	tmp_path(path, sizeof(path), "missing.faiss");
	err_init(&e);
	assert_int_equal(knn_read(&r, path, 0, 0, &e), ERR_NOTFOUND);
	assert_non_null(strstr(e.msg, "No such file"));
	err_init(&e);
	assert_int_equal(knn_write(&k, "/nonexistent-dir/x.faiss", &e), ERR_IO);
	assert_string_equal(e.path, "/nonexistent-dir/x.faiss");
	err_init(&e);
	assert_int_equal(knn_write(&k, "/dev/full", &e) < 0, 1);
	assert_true(e.code == ERR_IO || e.code == ERR_FAISS);
	knn_release(&k);
	free(base);
}

/* Bad vectors and ids are refused with the row named. */
static void test_knn_build_rejects_bad_input(void **state)
{
	(void)state;
	const size_t n = 50, d = 8;
	float *base = clustered(n, d, 4, 12);
	int64_t ids[50];
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i;
	struct knn k;
	struct err e;

	base[17 * d + 3] = NAN;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, NULL, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "row 17: component 3 is not finite");
	base[17 * d + 3] = 0.5f;

	ids[30] = 12;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, NULL, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "id 12 appears at rows 12 and 30");
	ids[30] = -1;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, NULL, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "row 30: id -1 is negative");
	ids[30] = 30;

	err_init(&e);
	assert_int_equal(knn_build(&k, 0, n, base, ids, NULL, &e), ERR_LIMIT);
	struct knn_opts o;
	knn_opts_init(&o);
	o.kind = KNN_IVF;
	o.nlist = 64;
	err_init(&e);
	assert_int_equal(knn_build(&k, d, n, base, ids, &o, &e), ERR_LIMIT);
	assert_non_null(strstr(e.msg, "too few for 64 lists"));

	/* an empty index is valid and finds nothing */
	assert_int_equal(knn_build(&k, d, 0, NULL, NULL, NULL, &e), 0);
	float dd[3];
	int64_t ll[3];
	assert_int_equal(knn_search(&k, 1, base, 3, dd, ll, &e), 0);
	assert_int_equal(ll[0], -1);
	knn_release(&k);
	free(base);
}

/* Every allocation failure during a build is a clean ERR_NOMEM. */
static void test_knn_build_survives_allocation_failures(void **state)
{
	(void)state;
	const size_t n = 2000, d = 8;
	float *base = clustered(n, d, 20, 13);
	int64_t *ids = malloc(n * sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)i;
	struct knn_opts o;
	knn_opts_init(&o);
	o.kind = KNN_IVF;
	o.nlist = 16;
	int ok = 0;
	for (long fail = 0; fail < 200 && !ok; fail++) {
		struct knn k;
		struct err e;
		err_init(&e);
		alloc_fail_after(fail);
		int rc = knn_build(&k, d, n, base, ids, &o, &e);
		alloc_fail_after(-1);
		if (rc == 0) {
			ok = 1;
			knn_release(&k);
		} else {
			assert_int_equal(rc, ERR_NOMEM);
			assert_null(k.index);
		}
	}
	assert_true(ok);
	free(ids);
	free(base);
}

/* Recall counts ties at the k-th distance as hits, and misses as misses. */
static void test_recall_counts_ties(void **state)
{
	(void)state;
	int64_t ei[4] = { 1, 2, 3, 4 };
	float ed[4] = { 0.1f, 0.2f, 0.3f, 0.3f };
	int64_t ai[4] = { 1, 2, 3, 9 }; /* 9 ties with 4 */
	float ad[4] = { 0.1f, 0.2f, 0.3f, 0.3f };
	assert_true(knn_recall(1, 4, ei, ed, ai, ad) == 1.0);
	ad[3] = 0.5f; /* now a real miss */
	assert_true(fabs(knn_recall(1, 4, ei, ed, ai, ad) - 0.75) < 1e-9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faiss_c_api_flat_matches_brute_force),
		cmocka_unit_test(test_knn_exact_matches_brute_force),
		cmocka_unit_test(test_exact_scan_deterministic_and_ties),
		cmocka_unit_test(test_knn_ivf_tuned_and_roundtrip),
		cmocka_unit_test(test_knn_hnsw_factory_roundtrip),
		cmocka_unit_test(test_knn_idmap_ivf_factory),
		cmocka_unit_test(test_faiss_errors_carry_faiss_message),
		cmocka_unit_test(test_knn_build_rejects_bad_input),
		cmocka_unit_test(test_knn_build_survives_allocation_failures),
		cmocka_unit_test(test_recall_counts_ties),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
