/*
 * bench_query.c - query latency, recall, build time and memory of the
 * nearest-neighbour index (query/knn.c) on synthetic descriptors.
 *
 *   bench_query [--dim D[,D..]] [--sizes N[,N..]] [--queries Q] [--json]
 *               [--factory STR] [--nlist L] [--no-peers] [--data DIR]
 *
 * Defaults: --dim 256 --sizes 10000,100000,1000000 --queries 200.
 *
 * Synthetic descriptors imitate the real ones (issue 4): five blocks
 * (shape 25%, local 25%, relief 25%, colour 3/16, size the rest of d),
 * each block a histogram mapped to unit L2 by a square root (Hellinger),
 * so every component is >= 0 and sparse-ish; the size block holds
 * positive log-size-like features.  Blocks are scaled by sqrt(weight)
 * (1, 1, 1, 0.5, 0.25) so squared L2 is the weighted block sum.  Vectors
 * are clustered in two levels: 32 material families, n/20 surfaces
 * (about 20 scans each) whose histograms are 70% their family's, then
 * each scan multiplies every bin by log-normal noise (sigma 1).  This
 * gives a relative contrast (mean distance / 1st-neighbour distance) near
 * 2.2, printed with each build: in the range of real image and shape
 * descriptors, and far harder for an index than tight clusters.  Queries are
 * fresh scans of random known surfaces (same generator, other stream).
 * Everything is seeded: the same arguments give the same vectors.
 *
 * Figures per (d, n): index build (kind, lists, tuned nprobe, seconds,
 * RSS growth, file size), write/read times, ANN single-query p50/p95 and
 * recall@10 against the exact scan, batched ANN per query, and peers
 * measured in the same run: own exact scan (single and batched) and FAISS
 * flat (single and batched), with ratios.  The --json form prints one
 * object per line.
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "err.h"
#include "query/knn.h"
#include "query/rank.h"

#include "banned.h"

#define N_FAMILIES 32
#define SCANS_PER_SURFACE 20
#define FAMILY_SHARE 0.7 /* of a surface histogram, from its family */
#define SCAN_NOISE 1.0   /* log-normal sigma per bin and scan */
#define MAX_LIST 16
#define K 10

struct blocks {
	size_t n;
	size_t off[5], len[5];
	float scale[5]; /* sqrt of the block weight */
};

struct opts {
	size_t dims[MAX_LIST], n_dims;
	size_t sizes[MAX_LIST], n_sizes;
	size_t n_queries;
	int json;
	int peers;
	const char *factory;
	size_t nlist;
	const char *data_dir;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in MiB (VmRSS) or the peak (VmHWM). */
static double rss_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double v = -1;
	if (!f)
		return -1;
	size_t fl = strlen(field);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, field, fl) && line[fl] == ':') {
			v = strtod(line + fl + 1, NULL) / 1024.0;
			break;
		}
	}
	fclose(f);
	return v;
}

static void layout_for(struct blocks *b, size_t d)
{
	static const float w[5] = { 1.0f, 1.0f, 1.0f, 0.5f, 0.25f };
	size_t q = d / 4;
	size_t len[5] = { q, q, q, d * 3 / 16, 0 };
	len[4] = d - len[0] - len[1] - len[2] - len[3];
	b->n = 5;
	size_t off = 0;
	for (size_t i = 0; i < 5; i++) {
		b->off[i] = off;
		b->len[i] = len[i];
		b->scale[i] = sqrtf(w[i]);
		off += len[i];
	}
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t s = a * 0x9e3779b97f4a7c15u ^ (b + 0x632be59bd9b4e019u);
	s ^= s >> 29;
	s *= 0xbf58476d1ce4e5b9u;
	return s ^ (s >> 32);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
	return ((double)(rnd(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(uint64_t *s)
{
	double u = unif(s), v = unif(s);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A raw histogram: heavy-tailed positive bins, a few dominant. */
static void raw_hist(float *h, size_t len, uint64_t *s)
{
	for (size_t i = 0; i < len; i++) {
		double x = -log(unif(s));
		h[i] = (float)(x * x * x);
	}
}

/* Histogram -> sqrt of the normalised histogram (unit L2), times scale. */
static void hellinger(float *h, size_t len, float scale)
{
	double sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += h[i];
	if (sum <= 0)
		sum = 1;
	for (size_t i = 0; i < len; i++)
		h[i] = scale * (float)sqrt(h[i] / sum);
}

/* Surface prototype (raw, before Hellinger): family mixed with its own. */
static void surface_proto(float *p, const struct blocks *b, uint64_t seed,
			  uint64_t surface)
{
	uint64_t fs = mix(seed, 1000003u * (surface % N_FAMILIES) + 7);
	uint64_t ss = mix(seed ^ 0x5eedu, surface);
	float tmp[1024];
	for (size_t i = 0; i < b->n; i++) {
		float *blk = p + b->off[i];
		size_t len = b->len[i];
		if (i == 4) {
			/* size: positive features around a per-surface scale */
			double base = 0.2 + 0.8 * unif(&ss);
			for (size_t j = 0; j < len; j++)
				blk[j] = (float)(base * (0.5 + unif(&fs)));
			continue;
		}
		raw_hist(blk, len, &fs);
		raw_hist(tmp, len, &ss);
		double sa = 0, sb = 0;
		for (size_t j = 0; j < len; j++) {
			sa += blk[j];
			sb += tmp[j];
		}
		for (size_t j = 0; j < len; j++)
			blk[j] = (float)(FAMILY_SHARE * blk[j] / sa +
					 (1.0 - FAMILY_SHARE) * tmp[j] / sb);
	}
}

/* One scan of a surface: multiplicative log-normal noise, then Hellinger. */
static void scan_of(float *v, const float *proto, const struct blocks *b,
		    uint64_t *s)
{
	for (size_t i = 0; i < b->n; i++) {
		const float *p = proto + b->off[i];
		float *o = v + b->off[i];
		size_t len = b->len[i];
		if (i == 4) {
			for (size_t j = 0; j < len; j++)
				o[j] = b->scale[i] * p[j] * (float)exp(0.1 * gauss(s));
			continue;
		}
		for (size_t j = 0; j < len; j++)
			o[j] = p[j] * (float)exp(SCAN_NOISE * gauss(s));
		hellinger(o, len, b->scale[i]);
	}
}

/*
 * n vectors (stream 0) or n queries (stream 1) over n_surfaces surfaces.
 * Rows are independent, so OpenMP gives the same bytes for any threads.
 */
static float *generate(size_t n, size_t d, size_t n_surfaces, uint64_t seed,
		       uint64_t stream)
{
	struct blocks b;
	layout_for(&b, d);
	float *v = alloc_array(n, d * sizeof(float));
	if (!v)
		return NULL;
#pragma omp parallel
	{
		float proto[1024];
#pragma omp for schedule(static)
		for (size_t r = 0; r < n; r++) {
			uint64_t s = mix(seed + stream, r);
			uint64_t surface = rnd(&s) % n_surfaces;
			surface_proto(proto, &b, seed, surface);
			scan_of(v + r * d, proto, &b, &s);
		}
	}
	return v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double pct(double *t, size_t n, double p)
{
	qsort(t, n, sizeof(*t), cmp_double);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return t[i];
}

/* Emit one measurement: human line or JSON object. */
/* Every record, for the one JSON object written to --json-file. */
static json_t *all_records;

/* Figures the query issue sets targets on, gathered while running. */
struct targets {
	double p50_100k, p50_1m; /* ANN single-query p50 in ms, -1 if not run */
	double recall_min;       /* lowest ANN recall@10 seen, 2 if none */
};
static struct targets tgt = { -1, -1, 2 };

static void report(const struct opts *o, json_t *obj, const char *human)
{
	if (all_records)
		json_array_append(all_records, obj);
	if (o->json) {
		char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s) {
			puts(s);
			free(s);
		}
	} else {
		puts(human);
	}
	fflush(stdout);
	json_decref(obj);
}

static void die_err(const struct err *e, const char *what)
{
	char buf[4400];
	fprintf(stderr, "bench_query: %s: %s\n", what, err_format(e, buf, sizeof(buf)));
	exit(70);
}

/*
 * Single-query latency over nq queries: OUT lat (seconds per query),
 * dist/ids (nq * K).  exact != 0 uses the own scan over base.
 */
static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the calling thread per query, from the last single_queries() */
static double *last_cpu;

static void single_queries(const struct knn *kn, int via_faiss, const float *base,
			   size_t n, size_t d, const int64_t *ids, const float *q,
			   size_t nq, float *dist, int64_t *lab, double *lat)
{
	struct err e;
	err_init(&e);
	xfree(last_cpu);
	last_cpu = alloc_array(nq ? nq : 1, sizeof(double));
	if (!last_cpu)
		exit(70);
	for (size_t j = 0; j < nq; j++) {
		double c0 = thread_cpu();
		double t0 = now();
		int rc = !kn ? knn_exact_search(base, n, d, ids, 1, q + j * d, K,
						dist + j * K, lab + j * K, &e)
			 : via_faiss ? knn_search_faiss(kn, 1, q + j * d, K, dist + j * K,
							lab + j * K, &e)
			 : knn_search(kn, 1, q + j * d, K, dist + j * K, lab + j * K, &e);
		lat[j] = now() - t0;
		last_cpu[j] = thread_cpu() - c0;
		if (rc)
			die_err(&e, "search");
	}
}

/*
 * The query pipeline phase 2 will run (rank_search): ANN candidates then
 * exact weighted re-rank, for queries as indexed, without colour, and with
 * shape weighted x2, against the exact weighted scan (RANK_EXACT).  The
 * colourless mode runs twice: with the archive's mean colour block put in
 * the ANN query, and without (the query's own colour block left as is).
 */
static void rank_modes(const struct opts *o, const struct knn *kn,
		       const float *base, const int64_t *ids, size_t n, size_t d,
		       const float *q, size_t nq, size_t n_surf, uint64_t seed)
{
	struct blocks b;
	struct rank_block rb[5];
	static const char *names[5] = { "shape", "local", "relief", "colour", "size" };
	layout_for(&b, d);
	for (size_t i = 0; i < 5; i++) {
		rb[i].name = names[i];
		rb[i].offset = b.off[i];
		rb[i].len = b.len[i];
	}
	struct rank_layout l = { 1, d, 5, rb, 0, NULL, 0, NULL };
	/* the robust order refscan query uses: every block a cue */
	struct rank_cue rc[5];
	for (size_t i = 0; i < 5; i++) {
		rc[i].name = names[i];
		rc[i].block = i;
		rc[i].offset = b.off[i];
		rc[i].len = b.len[i];
		rc[i].fine = 0;
	}
	struct rank_layout lr = { 1, d, 5, rb, 5, rc, 0, NULL };
	struct ref_table t;
	memset(&t, 0, sizeof(t));
	t.n = n;
	t.dim = d;
	t.ids = ids;
	t.vecs = base;
	double scale[5];
	float *mean = alloc_array(d, sizeof(float));
	struct err e;
	err_init(&e);
	if (!mean)
		exit(70);
	double t0 = now();
	if (rank_calibrate(&t, &l, 0, 1, scale, mean, &e))
		die_err(&e, "calibrate");
	double t_cal = now() - t0;
	t.block_scale = scale;

	static const float w_shape[5] = { 2, 1, 1, 1, 1 };
	struct {
		const char *name;
		unsigned flags;
		const float *w;
		int mean;
		const struct rank_layout *l;
	} modes[] = {
		{ "as-indexed", 0, NULL, 1, &l },
		{ "no-colour", RANK_NO_COLOUR, NULL, 1, &l },
		{ "no-colour,no-mean", RANK_NO_COLOUR, NULL, 0, &l },
		{ "shape-x2", 0, w_shape, 1, &l },
		{ "robust", 0, NULL, 1, &lr },
	};
	size_t nr = nq < 50 ? nq : 50;
	double *lat = alloc_array(nr, sizeof(double)), *lat_e = alloc_array(nr, sizeof(double));
	if (!lat || !lat_e)
		exit(70);
	char line[512];
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		t.block_mean = modes[m].mean ? mean : NULL;
		double hits = 0, fetched = 0;
		size_t n_exact = 0;
		for (size_t j = 0; j < nr; j++) {
			struct rank_hit ha[K], he[K];
			struct rank_result ra, re;
			struct rank_query rq;
			rank_query_init(&rq, q + j * d, K);
			rq.flags = modes[m].flags;
			rq.weights = modes[m].w;
			t0 = now();
			if (rank_search(&t, modes[m].l, kn, &rq, ha, &ra, &e))
				die_err(&e, "rank");
			lat[j] = now() - t0;
			rq.flags |= RANK_EXACT;
			t0 = now();
			if (rank_search(&t, modes[m].l, kn, &rq, he, &re, &e))
				die_err(&e, "rank exact");
			lat_e[j] = now() - t0;
			for (size_t a = 0; a < ra.n_hits; a++)
				for (size_t x = 0; x < re.n_hits; x++)
					hits += ha[a].id == he[x].id;
			fetched += (double)ra.n_fetched;
			n_exact += ra.exact != 0;
		}
		double rec = hits / (double)(nr * K);
		double p50 = pct(lat, nr, 0.5) * 1e3, p95 = pct(lat, nr, 0.95) * 1e3;
		double e50 = pct(lat_e, nr, 0.5) * 1e3;
		snprintf(line, sizeof(line),
			 "d=%-4zu n=%-8zu rank   %-17s p50 %.3f ms  p95 %.3f ms  recall@10 %.4f  "
			 "fetch %.0f, exact path %zu/%zu | exact weighted scan p50 %.3f ms "
			 "(calibration %.3f s)",
			 d, n, modes[m].name, p50, p95, rec, fetched / (double)nr,
			 n_exact, nr, e50, t_cal);
		report(o, json_pack("{s:s,s:i,s:i,s:s,s:f,s:f,s:f,s:f,s:i,s:f,s:f}", "bench",
				    "rank", "d", (json_int_t)d, "n", (json_int_t)n, "mode",
				    modes[m].name, "p50_ms", p50, "p95_ms", p95, "recall10", rec,
				    "fetch", fetched / (double)nr, "exact_path", (json_int_t)n_exact,
				    "exact_p50_ms", e50, "calibration_s", t_cal),
		       line);
	}
	/*
	 * Views: refscan stores each reference with VIEWS more vectors (what
	 * 8 scanner positions see) and an exact query ranks all of them.  The
	 * exact robust scan with and without them, where it runs (archives up
	 * to the exact index's limit); view vectors are further scans from
	 * the generator.
	 */
	if (n <= KNN_EXACT_MAX) {
		const size_t views = 8, rec = (1 + views) * d;
		float *vecs = alloc_array(n, rec * sizeof(float));
		if (!vecs)
			exit(70);
		for (size_t r = 0; r < n; r++)
			memcpy(vecs + r * rec, base + r * d, d * sizeof(float));
		for (size_t v = 1; v <= views; v++) {
			float *g = generate(n, d, n_surf, seed, 10 + v);
			if (!g)
				exit(70);
			for (size_t r = 0; r < n; r++)
				memcpy(vecs + r * rec + v * d, g + r * d, d * sizeof(float));
			xfree(g);
		}
		struct ref_table tv = t;
		tv.views = views;
		tv.vecs = vecs;
		t.block_mean = tv.block_mean = mean;
		double *lat_v = alloc_array(nr, sizeof(double));
		if (!lat_v)
			exit(70);
		for (size_t j = 0; j < nr; j++) {
			struct rank_hit h[K];
			struct rank_result r;
			struct rank_query rq;
			rank_query_init(&rq, q + j * d, K);
			rq.flags = RANK_EXACT;
			t0 = now();
			if (rank_search(&t, &lr, kn, &rq, h, &r, &e))
				die_err(&e, "rank");
			lat[j] = now() - t0;
			t0 = now();
			if (rank_search(&tv, &lr, kn, &rq, h, &r, &e))
				die_err(&e, "rank views");
			lat_v[j] = now() - t0;
		}
		double p0 = pct(lat, nr, 0.5) * 1e3, pv = pct(lat_v, nr, 0.5) * 1e3;
		double mb0 = (double)n * (double)d * 4 / 1e6, mbv = mb0 * (double)(1 + views);
		snprintf(line, sizeof(line),
			 "d=%-4zu n=%-8zu views  exact robust p50 %.3f ms with %zu views per reference, "
			 "%.3f ms without (x%.1f); vectors %.0f MB, %.0f MB without",
			 d, n, pv, views, p0, pv / p0, mbv, mb0);
		report(o, json_pack("{s:s,s:i,s:i,s:i,s:f,s:f,s:f,s:f}", "bench", "views",
				    "d", (json_int_t)d, "n", (json_int_t)n, "views", (json_int_t)views,
				    "p50_ms", pv, "p50_ms_no_views", p0, "mb", mbv, "mb_no_views", mb0),
		       line);
		xfree(lat_v);
		xfree(vecs);
	}
	xfree(lat_e);
	xfree(lat);
	xfree(mean);
}

static void run(const struct opts *o, size_t d, size_t n)
{
	struct err e;
	struct knn kn, flat;
	char line[1024];
	err_init(&e);
	knn_init(&kn);
	knn_init(&flat);
	size_t nq = o->n_queries;
	size_t n_surf = n / SCANS_PER_SURFACE ? n / SCANS_PER_SURFACE : 1;
	const uint64_t seed = 20240601u;

	double t0 = now();
	float *base = generate(n, d, n_surf, seed, 0);
	float *q = generate(nq, d, n_surf, seed, 1);
	int64_t *ids = alloc_array(n, sizeof(*ids));
	float *gd = alloc_array(nq * K, sizeof(float)), *ad = alloc_array(nq * K, sizeof(float));
	int64_t *gi = alloc_array(nq * K, sizeof(int64_t)), *ai = alloc_array(nq * K, sizeof(int64_t));
	double *lat = alloc_array(nq, sizeof(double));
	if (!base || !q || !ids || !gd || !ad || !gi || !ai || !lat) {
		fprintf(stderr, "bench_query: out of memory at n=%zu d=%zu\n", n, d);
		exit(70);
	}
	/* ids are sparse and not row numbers, as in an archive */
	for (size_t i = 0; i < n; i++)
		ids[i] = (int64_t)(i * 7 + 3);
	double t_gen = now() - t0;

	/* ground truth: own exact scan, all queries in one call */
	t0 = now();
	if (knn_exact_search(base, n, d, ids, nq, q, K, gd, gi, &e))
		die_err(&e, "exact scan");
	double t_exact_batch = (now() - t0) / (double)nq;

	/*
	 * Relative contrast (non-squared): mean distance from a query to a
	 * random reference over its 1st and 10th neighbour distances.  Real
	 * image/shape descriptors sit around 1.5-3; iid noise near 1.
	 */
	double s_rand = 0, s_1 = 0, s_10 = 0;
	uint64_t rs = 99;
	for (size_t j = 0; j < nq; j++) {
		for (int t = 0; t < 20; t++)
			s_rand += sqrt(knn_l2sqr(q + j * d, base + (rnd(&rs) % n) * d, d));
		s_1 += sqrt(gd[j * K]);
		s_10 += sqrt(gd[j * K + K - 1]);
	}
	double contrast1 = s_rand / 20.0 / s_1, contrast10 = s_rand / 20.0 / s_10;

	/* the index refscan would build */
	struct knn_opts ko;
	knn_opts_init(&ko);
	ko.factory = o->factory;
	ko.nlist = o->nlist;
	double rss0 = rss_mib("VmRSS");
	t0 = now();
	if (knn_build(&kn, d, n, base, ids, &ko, &e))
		die_err(&e, "build");
	double t_build = now() - t0;
	double rss_build = rss_mib("VmRSS") - rss0;

	char path[1024];
	snprintf(path, sizeof(path), "%s/knn-%zu-%zu.faiss", o->data_dir, d, n);
	t0 = now();
	if (knn_write(&kn, path, &e))
		die_err(&e, "write");
	double t_write = now() - t0;
	struct stat st;
	double file_mib = stat(path, &st) ? -1 : (double)st.st_size / 1048576.0;

	snprintf(line, sizeof(line),
		 "d=%-4zu n=%-8zu build  %-5s lists=%-5zu %s=%-5g tuned_recall@10=%.4f  "
		 "%.2f s  rss +%.0f MiB  file %.0f MiB  write %.2f s  (gen %.1f s, contrast %.2f/%.2f)",
		 d, n, knn_kind_name(kn.kind), kn.nlist,
		 kn.param_name[0] ? kn.param_name : "param", kn.param,
		 kn.tuned_recall, t_build, rss_build, file_mib, t_write, t_gen,
		 contrast1, contrast10);
	snprintf(line + strlen(line), sizeof(line) - strlen(line),
		 "\nd=%-4zu n=%-8zu build  train %.2f s (%zu vectors)  add %.2f s  tune %.2f s (%zu held out)",
		 d, n, kn.stats.train_s, kn.stats.n_train, kn.stats.add_s, kn.stats.tune_s,
		 kn.stats.n_tune);
	report(o, json_pack("{s:s,s:i,s:i,s:s,s:i,s:s,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:f}",
			    "bench", "build", "d", (json_int_t)d, "n", (json_int_t)n,
			    "kind", knn_kind_name(kn.kind), "nlist", (json_int_t)kn.nlist,
			    "param", kn.param_name, "param_value", kn.param,
			    "tuned_recall", kn.tuned_recall, "seconds", t_build,
			    "rss_mib", rss_build, "file_mib", file_mib, "write_s", t_write,
			    "train_s", kn.stats.train_s, "add_s", kn.stats.add_s,
			    "tune_s", kn.stats.tune_s),
	       line);

	/* ANN: one query per call, then all in one call */
	single_queries(&kn, 0, NULL, 0, d, NULL, q, nq, ad, ai, lat);
	double recall = knn_recall(nq, K, gi, gd, ai, ad);
	double p50 = pct(lat, nq, 0.5) * 1e3, p95 = pct(lat, nq, 0.95) * 1e3;
	/*
	 * CPU time of the querying thread: the work itself, which the load of
	 * other processes does not inflate (an IVF query runs on one thread).
	 */
	double cpu50 = pct(last_cpu, nq, 0.5) * 1e3;
	t0 = now();
	if (knn_search(&kn, nq, q, K, ad, ai, &e))
		die_err(&e, "batched search");
	double t_batch = (now() - t0) / (double)nq * 1e3;
	double recall_b = knn_recall(nq, K, gi, gd, ai, ad);
	if (d == o->dims[0] && n == 100000)
		tgt.p50_100k = p50;
	if (d == o->dims[0] && n == 1000000)
		tgt.p50_1m = p50;
	if (recall < tgt.recall_min)
		tgt.recall_min = recall;
	snprintf(line, sizeof(line),
		 "d=%-4zu n=%-8zu query  %-5s single p50 %.3f ms  p95 %.3f ms  (thread cpu p50 %.3f ms)  "
		 "recall@10 %.4f | batched(%zu) %.3f ms/query recall@10 %.4f",
		 d, n, knn_kind_name(kn.kind), p50, p95, cpu50, recall, nq, t_batch, recall_b);
	report(o, json_pack("{s:s,s:i,s:i,s:s,s:f,s:f,s:f,s:f,s:i,s:f,s:f}",
			    "bench", "query", "d", (json_int_t)d, "n", (json_int_t)n,
			    "kind", knn_kind_name(kn.kind), "p50_ms", p50, "p95_ms", p95,
			    "thread_cpu_p50_ms", cpu50,
			    "recall10", recall, "batch", (json_int_t)nq,
			    "batch_ms_per_query", t_batch, "batch_recall10", recall_b),
	       line);

	/* read back into memory (a copy), then with the lists mapped */
	struct knn rd;
	t0 = now();
	if (knn_read(&rd, path, d, 0, &e))
		die_err(&e, "read");
	double t_read_copy = now() - t0;
	knn_release(&rd);
	t0 = now();
	if (knn_read(&rd, path, d, KNN_READ_MMAP, &e))
		die_err(&e, "read");
	double t_read = now() - t0;
	float *rdd = alloc_array(nq * K, sizeof(float));
	int64_t *rdi = alloc_array(nq * K, sizeof(int64_t));
	if (!rdd || !rdi) {
		fprintf(stderr, "bench_query: out of memory\n");
		exit(70);
	}
	single_queries(&rd, 0, NULL, 0, d, NULL, q, nq, rdd, rdi, lat);
	double p50m = pct(lat, nq, 0.5) * 1e3, p95m = pct(lat, nq, 0.95) * 1e3;
	int same = !memcmp(rdi, ai, nq * K * sizeof(int64_t));
	knn_release(&rd);
	xfree(rdd);
	xfree(rdi);
	snprintf(line, sizeof(line),
		 "d=%-4zu n=%-8zu mmap   read %.3f s (copying read %.3f s)  single p50 %.3f ms  "
		 "p95 %.3f ms  same results: %s",
		 d, n, t_read, t_read_copy, p50m, p95m, same ? "yes" : "NO");
	report(o, json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:b}", "bench", "mmap",
			    "d", (json_int_t)d, "n", (json_int_t)n, "read_s", t_read,
			    "copy_read_s", t_read_copy,
			    "p50_ms", p50m, "p95_ms", p95m, "same", same),
	       line);

	rank_modes(o, &kn, base, ids, n, d, q, nq, n_surf, seed);

	if (o->peers) {
		/* peer 1: own exact scan, one query per call */
		size_t np = nq < 50 ? nq : 50;
		single_queries(NULL, 0, base, n, d, ids, q, np, ad, ai, lat);
		double own50 = pct(lat, np, 0.5) * 1e3;
		double owncpu = pct(last_cpu, np, 0.5) * 1e3;
		/* peer 2: FAISS flat, one query per call and batched */
		struct knn_opts fo;
		knn_opts_init(&fo);
		fo.kind = KNN_EXACT;
		if (knn_build(&flat, d, n, base, ids, &fo, &e))
			die_err(&e, "flat build");
		size_t nf = nq < 20 ? nq : 20;
		single_queries(&flat, 1, NULL, 0, d, NULL, q, nf, ad, ai, lat);
		double flat50 = pct(lat, nf, 0.5) * 1e3;
		double flatcpu = pct(last_cpu, nf, 0.5) * 1e3;
		t0 = now();
		if (knn_search_faiss(&flat, nq, q, K, ad, ai, &e))
			die_err(&e, "flat batched");
		double flatb = (now() - t0) / (double)nq * 1e3;
		knn_release(&flat);
		snprintf(line, sizeof(line),
			 "d=%-4zu n=%-8zu peers  own-scan single %.3f ms (thread cpu %.3f) batched %.3f ms | "
			 "faiss-flat single %.3f ms (thread cpu %.3f) batched %.3f ms | ann vs flat single x%.0f, "
			 "own-scan vs flat single x%.1f, flat single/batched x%.0f",
			 d, n, own50, owncpu, t_exact_batch * 1e3, flat50, flatcpu, flatb,
			 flat50 / p50, flat50 / own50, flat50 / flatb);
		report(o, json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f}", "bench", "peers",
				    "d", (json_int_t)d, "n", (json_int_t)n,
				    "own_single_ms", own50, "own_single_thread_cpu_ms", owncpu,
				    "own_batch_ms", t_exact_batch * 1e3,
				    "flat_single_ms", flat50, "flat_single_thread_cpu_ms", flatcpu,
				    "flat_batch_ms", flatb),
		       line);
	}

	unlink(path); /* 1 GiB at 1 M: not kept between runs */
	knn_release(&kn);
	xfree(lat);
	xfree(ai);
	xfree(gi);
	xfree(ad);
	xfree(gd);
	xfree(ids);
	xfree(q);
	xfree(base);
}

static int parse_list(const char *s, size_t *out, size_t *n)
{
	*n = 0;
	while (*s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (end == s || v == 0 || *n == MAX_LIST)
			return -1;
		out[(*n)++] = (size_t)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return *n ? 0 : -1;
}

static void usage(FILE *fp)
{
	fputs("usage: bench_query [--dim D[,D..]] [--sizes N[,N..]] [--queries Q]\n"
	      "                   [--factory STR] [--nlist L] [--no-peers] [--json]\n"
	      "                   [--data DIR] [--json-file FILE]\n", fp);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dim", required_argument, NULL, 'd' },
		{ "sizes", required_argument, NULL, 's' },
		{ "queries", required_argument, NULL, 'q' },
		{ "factory", required_argument, NULL, 'f' },
		{ "nlist", required_argument, NULL, 'l' },
		{ "no-peers", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "data", required_argument, NULL, 'D' },
		{ "json-file", required_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o = { .n_queries = 200, .peers = 1, .data_dir = "build/bench-data" };
	/* scripts/run-bench passes these; options win */
	const char *json_path = getenv("REFSCAN_BENCH_JSON");
	const char *data_env = getenv("REFSCAN_BENCH_DATA");
	if (data_env && *data_env)
		o.data_dir = data_env;
	parse_list("256", o.dims, &o.n_dims);
	parse_list("10000,100000,1000000", o.sizes, &o.n_sizes);
	int c;
	size_t tmp[MAX_LIST], nt;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_list(optarg, o.dims, &o.n_dims))
				goto bad;
			break;
		case 's':
			if (parse_list(optarg, o.sizes, &o.n_sizes))
				goto bad;
			break;
		case 'q':
			if (parse_list(optarg, tmp, &nt) || nt != 1)
				goto bad;
			o.n_queries = tmp[0];
			break;
		case 'l':
			if (parse_list(optarg, tmp, &nt) || nt != 1)
				goto bad;
			o.nlist = tmp[0];
			break;
		case 'f': o.factory = optarg; break;
		case 'P': o.peers = 0; break;
		case 'j': o.json = 1; break;
		case 'D': o.data_dir = optarg; break;
		case 'J': json_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	for (size_t i = 0; i < o.n_dims; i++)
		if (o.dims[i] < 16 || o.dims[i] > 1024)
			goto bad;
	mkdir(o.data_dir, 0777);
	if (json_path && *json_path)
		all_records = json_array();
	/* figures from a loaded machine are not comparable: say the load */
	double la[3] = { -1, -1, -1 };
	if (getloadavg(la, 3) < 0)
		la[0] = -1;
	char head[256];
	snprintf(head, sizeof(head), "bench_query: %d threads, %zu queries, k=%d, faiss %s, load %.2f",
		 omp_get_max_threads(), o.n_queries, K, FAISS_VERSION_STR, la[0]);
	report(&o, json_pack("{s:s,s:i,s:i,s:i,s:s,s:f}", "bench", "env",
			     "threads", (json_int_t)omp_get_max_threads(),
			     "queries", (json_int_t)o.n_queries, "k", (json_int_t)K,
			     "faiss", FAISS_VERSION_STR, "load", la[0]),
	       head);
	double t0 = now();
	for (size_t i = 0; i < o.n_dims; i++)
		for (size_t j = 0; j < o.n_sizes; j++)
			run(&o, o.dims[i], o.sizes[j]);
	xfree(last_cpu);
	if (getloadavg(la, 3) < 0)
		la[0] = -1;

	/* targets of the query issue, on the first dimension run */
	char line[512];
	int ok100 = tgt.p50_100k >= 0 && tgt.p50_100k < 20.0;
	int ok1m = tgt.p50_1m >= 0 && tgt.p50_1m < 50.0;
	int okrec = tgt.recall_min <= 1.0 && tgt.recall_min >= 0.99;
	snprintf(line, sizeof(line),
		 "targets (d=%zu): p50@100k %.3f ms < 20: %s | p50@1M %.3f ms < 50: %s | "
		 "min recall@10 %.4f >= 0.99: %s",
		 o.dims[0], tgt.p50_100k, tgt.p50_100k < 0 ? "not run" : ok100 ? "met" : "MISSED",
		 tgt.p50_1m, tgt.p50_1m < 0 ? "not run" : ok1m ? "met" : "MISSED",
		 tgt.recall_min > 1 ? -1.0 : tgt.recall_min,
		 tgt.recall_min > 1 ? "not run" : okrec ? "met" : "MISSED");
	report(&o, json_pack("{s:s,s:i,s:f,s:b,s:f,s:b,s:f,s:b,s:f}", "bench", "targets",
			     "d", (json_int_t)o.dims[0], "p50_100k_ms", tgt.p50_100k,
			     "p50_100k_met", ok100, "p50_1m_ms", tgt.p50_1m, "p50_1m_met", ok1m,
			     "recall10_min", tgt.recall_min > 1 ? -1.0 : tgt.recall_min,
			     "recall10_met", okrec, "load_end", la[0]),
	       line);
	if (all_records) {
		json_t *doc = json_pack("{s:s,s:f,s:o}", "bench", "query", "seconds",
					now() - t0, "records", all_records);
		all_records = NULL;
		if (!doc || json_dump_file(doc, json_path, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) {
			fprintf(stderr, "bench_query: cannot write '%s'\n", json_path);
			json_decref(doc);
			return 74;
		}
		json_decref(doc);
	}
	if (!o.json)
		printf("bench_query: total %.1f s, peak rss %.0f MiB, load %.2f\n", now() - t0,
		       rss_mib("VmHWM"), la[0]);
	return 0;
bad:
	usage(stderr);
	return 64;
}
