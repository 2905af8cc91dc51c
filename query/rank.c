/*
 * rank.c - exact weighted re-ranking, scores, filters (see rank.h).
 *
 * Invariants:
 *   - distances are computed in one place (weighted_l2 / rank_distance)
 *     with per-component weights expanded from the block weights, so the
 *     scan, the re-rank and --explain agree;
 *   - top-k order is (distance, row), rows ascending with ids, so results
 *     do not depend on the thread count or the path taken;
 *   - filters run before any distance, on one thread (the table's meta
 *     callback need not be thread-safe).
 */
#include "rank.h"
#include "knn.h"
#include "knn_int.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"

#include "banned.h"

/* Rows per OpenMP chunk in the exact scan (1 MiB of 256-float rows). */
#define RANK_SCAN_CHUNK 1024u
/* Seed of the calibration rank_search() does when the table has none. */
#define RANK_CALIBRATION_SEED 0x63616c6962u

void rank_query_init(struct rank_query *q, const float *vec, size_t k)
{
	memset(q, 0, sizeof(*q));
	q->vec = vec;
	q->k = k;
	q->size_min_mm = NAN;
	q->size_max_mm = NAN;
	q->keep = 0;
}

int rank_layout_check(const struct rank_layout *l, struct err *e)
{
	if (l->n_blocks == 0 || l->n_blocks > RANK_MAX_BLOCKS)
		return err_set(e, ERR_FORMAT, "layout has %zu blocks (1..%d)",
			       l->n_blocks, RANK_MAX_BLOCKS);
	size_t off = 0;
	for (size_t i = 0; i < l->n_blocks; i++) {
		const struct rank_block *b = &l->blocks[i];
		if (!b->name || !*b->name)
			return err_set(e, ERR_FORMAT, "layout block %zu has no name", i);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(l->blocks[j].name, b->name))
				return err_set(e, ERR_FORMAT, "layout block '%s' appears twice", b->name);
		if (b->offset != off)
			return err_set(e, ERR_FORMAT, "layout block '%s' starts at %zu, expected %zu",
				       b->name, b->offset, off);
		if (b->len == 0 || b->len > l->dim - off)
			return err_set(e, ERR_FORMAT, "layout block '%s' length %zu does not fit in %zu",
				       b->name, b->len, l->dim - off);
		off += b->len;
	}
	if (l->carried > l->dim || off != l->dim - l->carried)
		return err_set(e, ERR_FORMAT, "layout blocks cover %zu of %zu components, %zu carried",
			       off, l->dim, l->carried);
	if (l->n_cues > RANK_MAX_CUES || (l->n_cues && !l->cues))
		return err_set(e, ERR_FORMAT, "layout has %zu cues (0..%d)", l->n_cues, RANK_MAX_CUES);
	for (size_t c = 0; c < l->n_cues; c++) {
		const struct rank_cue *k = &l->cues[c];
		if (k->block >= l->n_blocks)
			return err_set(e, ERR_FORMAT, "layout cue %zu names block %zu of %zu",
				       c, k->block, l->n_blocks);
		const struct rank_block *b = &l->blocks[k->block];
		if (k->len == 0 || k->offset < b->offset || k->offset - b->offset > b->len ||
		    k->len > b->len - (k->offset - b->offset))
			return err_set(e, ERR_FORMAT, "layout cue %zu (%zu+%zu) is not inside block '%s'",
				       c, k->offset, k->len, b->name);
	}
	return 0;
}

int rank_table_check(const struct ref_table *t, const struct rank_layout *l,
		     struct err *e)
{
	if (t->dim != l->dim)
		return err_set(e, ERR_FORMAT, "table dimension %zu does not match layout dimension %zu",
			       t->dim, l->dim);
	if (t->n && (!t->ids || !t->vecs))
		return err_set(e, ERR_FORMAT, "table of %zu rows has no ids or vectors", t->n);
	for (size_t r = 1; r < t->n; r++)
		if (t->ids[r] <= t->ids[r - 1])
			return err_set(e, ERR_FORMAT, "row %zu: id %lld not above previous id %lld",
				       r, (long long)t->ids[r], (long long)t->ids[r - 1]);
	return 0;
}

int rank_weights(const struct rank_layout *l, const struct rank_query *q,
		 float *w, struct err *e)
{
	int any = 0;
	for (size_t b = 0; b < l->n_blocks; b++) {
		float v = q->weights ? q->weights[b] : 1.0f;
		if (!isfinite(v) || v < 0)
			return err_set(e, ERR_FORMAT, "weight of block '%s' is %g, not a finite value >= 0",
				       l->blocks[b].name, (double)v);
		if ((q->flags & RANK_NO_COLOUR) && !strcmp(l->blocks[b].name, RANK_COLOUR_BLOCK))
			v = 0;
		w[b] = v;
		any |= v > 0;
	}
	if (!any)
		return err_set(e, ERR_FORMAT, "every block weight is 0");
	return 0;
}

/* Per-component weights from block weights. */
static void expand_weights(const struct rank_layout *l, const float *w, float *wd)
{
	for (size_t i = l->dim - l->carried; i < l->dim; i++)
		wd[i] = 0.0f; /* carried: never compared */
	for (size_t b = 0; b < l->n_blocks; b++)
		for (size_t j = 0; j < l->blocks[b].len; j++)
			wd[l->blocks[b].offset + j] = w[b];
}

/* Vector v of row r: 0 the reference's own, 1..views its views. */
static const float *row_vec(const struct ref_table *t, size_t r, size_t v)
{
	return t->vecs + (r * (1 + t->views) + v) * t->dim;
}

/* The scan kernel, cloned for AVX-512 and AVX2 like knn_l2sqr(). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static float weighted_l2(const float *a, const float *b, const float *w, size_t d)
{
	float s = 0.0f;
#pragma omp simd reduction(+ : s)
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - b[i];
		s += w[i] * t * t;
	}
	return s;
}

/*
 * The robust order's state for one query (rank.h): the cues in use, each
 * with its factor sqrt(w_b / median), and how many of the smallest are
 * kept.  n == 0: order by the weighted distance.
 */
struct fuse {
	size_t n, keep;
	size_t off[RANK_MAX_CUES], len[RANK_MAX_CUES];
	size_t cue[RANK_MAX_CUES]; /* index in the layout's cues */
	float f[RANK_MAX_CUES];
	bool fine[RANK_MAX_CUES];  /* left out of a pair of unlike noise */
	double share;              /* of the cues kept */
	size_t noise;              /* component of the noise level, or SIZE_MAX */
	double qnoise;             /* the query's, at least RANK_NOISE_FLOOR */
	double qtol;               /* the query's fine tolerance (rank_layout) */
	const struct rank_layout *l;
	double unlike;             /* share of the sample of unlike noise */
};

/* How many of n cues the robust match keeps: share of them, 1..n. */
static size_t fuse_keep(size_t n, double share)
{
	size_t k = (size_t)((double)n * share + 1e-9);
	return k < 1 ? 1 : k > n ? n : k;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static double noise_level(float v)
{
	return v > (float)RANK_NOISE_FLOOR ? (double)v : RANK_NOISE_FLOOR;
}

/* Whether two noise levels (each at least the floor) are unlike (rank.h). */
static bool unlike_noise(double a, double b)
{
	return a > RANK_NOISE_RATIO * b || b > RANK_NOISE_RATIO * a;
}

/* The query's fine tolerance, worked out once per query (unlike_pair). */
static double query_tolerance(const struct rank_layout *l, const float *qv)
{
	return l->fine_tolerance ? l->fine_tolerance(qv) : 0.0;
}

/*
 * Whether the pair of a query (level q, at least the floor; qtol its
 * query_tolerance()) and row r leaves its fine cues out: levels unlike,
 * and the noisier beyond what the cleaner vector's fine cues tolerate.
 */
static bool unlike_pair(const struct rank_layout *l, double q, double qtol, const float *r,
			size_t at)
{
	double v = noise_level(r[at]);
	if (!unlike_noise(q, v))
		return false;
	if (!l->fine_tolerance)
		return true;
	return q > v ? q > l->fine_tolerance(r) : v > qtol;
}

/*
 * The share of the m sampled rows (those the medians are taken over)
 * whose noise level is unlike the query's (rank.h, Noise); qtol is the
 * query's query_tolerance().
 */
static double unlike_share(const struct ref_table *t, const struct rank_layout *l,
			   const float *qv, double qtol, size_t m)
{
	if (!l->carried || !m)
		return 0;
	size_t at = l->dim - l->carried, n = 0;
	double q = noise_level(qv[at]);
	for (size_t i = 0; i < m; i++)
		n += unlike_pair(l, q, qtol, row_vec(t, i * t->n / m, 0), at);
	return (double)n / (double)m;
}

/*
 * Medians of every weighted cue over an even sample of the table (all
 * rows up to RANK_FUSE_SAMPLE), for query vector qv.  Leaves F->n = 0 when
 * the layout has no cues or none varies.
 */
static int fuse_prepare(const struct ref_table *t, const struct rank_layout *l,
			const float *w, const float *qv, double keep, struct fuse *F,
			struct err *e)
{
	memset(F, 0, sizeof(*F));
	if (!l->n_cues || !t->n)
		return 0;
	size_t m = t->n < RANK_FUSE_SAMPLE ? t->n : RANK_FUSE_SAMPLE;
	float *d = alloc_array(m, sizeof(*d));
	if (!d)
		return err_set(e, ERR_NOMEM, "out of memory for %zu cue distances", m);
	double qtol = l->carried ? query_tolerance(l, qv) : 0.0;
	F->unlike = unlike_share(t, l, qv, qtol, m);
	for (size_t c = 0; c < l->n_cues && c < RANK_MAX_CUES; c++) {
		const struct rank_cue *k = &l->cues[c];
		if (!(w[k->block] > 0))
			continue;
		for (size_t i = 0; i < m; i++) {
			/* rows i * n / m: even, deterministic, all rows when m == n */
			size_t r = i * t->n / m; /* i < 4096: no overflow */
			d[i] = knn_l2sqr(qv + k->offset, row_vec(t, r, 0) + k->offset, k->len);
		}
		qsort(d, m, sizeof(*d), cmp_float);
		float med = m % 2 ? d[m / 2] : 0.5f * (d[m / 2 - 1] + d[m / 2]);
		if (!(med > 1e-12f) || !isfinite(med))
			continue; /* the cue does not vary across the archive */
		F->off[F->n] = k->offset;
		F->len[F->n] = k->len;
		F->cue[F->n] = c;
		F->f[F->n] = (float)sqrt((double)w[k->block] / (double)med);
		F->fine[F->n] = k->fine != 0;
		F->n++;
	}
	if (!(keep > 0))
		keep = RANK_FUSE_KEEP;
	F->share = keep;
	F->keep = fuse_keep(F->n, keep);
	/* a pair of unlike noise leaves its fine cues out, unless nothing else is left */
	size_t n_fine = 0;
	for (size_t c = 0; c < F->n; c++)
		n_fine += F->fine[c];
	F->noise = SIZE_MAX;
	if (l->carried && n_fine && n_fine < F->n) {
		F->noise = l->dim - l->carried;
		F->qnoise = noise_level(qv[F->noise]);
		F->qtol = qtol;
		F->l = l;
	}
	xfree(d);
	return 0;
}

/*
 * The robust match of row vector r: mean of the x_c, the keep smallest
 * weighing 1 and the others RANK_FUSE_TAIL, capped at RANK_FUSE_CAP; a
 * pair of unlike noise without the fine cues.  OUT (may be NULL): *kept,
 * bit i set for each layout cue i among the keep smallest (ties: the
 * earlier cue).
 */
static float fuse_match_kept(const struct fuse *F, const float *qv, const float *r,
			     uint32_t *kept)
{
	float x[RANK_MAX_CUES];
	size_t who[RANK_MAX_CUES], n = 0, keep = F->keep;
	bool unlike = F->noise != SIZE_MAX &&
		      unlike_pair(F->l, F->qnoise, F->qtol, r, F->noise);
	for (size_t c = 0; c < F->n; c++) {
		if (unlike && F->fine[c])
			continue;
		float v = F->f[c] * sqrtf(knn_l2sqr(qv + F->off[c], r + F->off[c], F->len[c]));
		size_t j = n++;
		while (j > 0 && x[j - 1] > v) { /* insertion: x stays sorted, stable */
			x[j] = x[j - 1];
			who[j] = who[j - 1];
			j--;
		}
		x[j] = v;
		who[j] = F->cue[c];
	}
	if (n < F->n)
		keep = fuse_keep(n, F->share);
	if (kept) {
		*kept = 0;
		for (size_t c = 0; c < keep; c++)
			*kept |= (uint32_t)1 << who[c];
	}
	float s = 0.0f, t = 0.0f;
	for (size_t c = 0; c < keep; c++)
		s += x[c];
	for (size_t c = keep; c < n; c++)
		t += x[c] < (float)RANK_FUSE_CAP ? x[c] : (float)RANK_FUSE_CAP;
	return (s + (float)RANK_FUSE_TAIL * t) /
	       ((float)keep + (float)RANK_FUSE_TAIL * (float)(n - keep));
}

static float fuse_match(const struct fuse *F, const float *qv, const float *r)
{
	return fuse_match_kept(F, qv, r, NULL);
}

/*
 * What orders the rows: the robust match, or the weighted distance, of
 * row r's best vector (a view's times 1 + RANK_VIEW_PENALTY).  OUT (may be
 * NULL): *view, the vector that gave it.
 */
static float row_order(const struct fuse *F, const float *qv, const struct ref_table *t,
		       size_t r, const float *wd, uint32_t *view)
{
	float best = 0.0f;
	uint32_t bv = 0;
	for (size_t v = 0; v <= t->views; v++) {
		const float *x = row_vec(t, r, v);
		float m = F->n ? fuse_match(F, qv, x) : weighted_l2(qv, x, wd, t->dim);
		if (v)
			m *= (float)(1.0 + RANK_VIEW_PENALTY);
		if (v == 0 || m < best) {
			best = m;
			bv = (uint32_t)v;
		}
	}
	if (view)
		*view = bv;
	return best;
}

float rank_distance(const struct rank_layout *l, const float *w,
		    const float *a, const float *b, float *part)
{
	float sum = 0.0f;
	for (size_t k = 0; k < l->n_blocks; k++) {
		size_t o = l->blocks[k].offset;
		float p = w[k] * knn_l2sqr(a + o, b + o, l->blocks[k].len);
		if (part)
			part[k] = p;
		sum += p;
	}
	return sum;
}

double rank_scale(const struct rank_layout *l, const float *w,
		  const double *block_scale)
{
	double s = 0;
	for (size_t b = 0; b < l->n_blocks; b++)
		s += (double)w[b] * block_scale[b];
	return s;
}

float rank_score(float dist, double scale)
{
	if (!(scale > 0) || !(dist >= 0))
		return dist == 0 ? 100.0f : 0.0f;
	return (float)(100.0 * exp(-RANK_SCORE_K * (double)dist / scale));
}

int rank_calibrate(const struct ref_table *t, const struct rank_layout *l,
		   size_t n_pairs, uint64_t seed, double *scale, float *mean,
		   struct err *e)
{
	if (t->n < 2)
		return err_set(e, ERR_FORMAT, "calibration needs 2 references, have %zu", t->n);
	if (!n_pairs)
		n_pairs = RANK_CALIBRATION_PAIRS;
	float ones[RANK_MAX_BLOCKS], part[RANK_MAX_BLOCKS];
	for (size_t b = 0; b < l->n_blocks; b++) {
		ones[b] = 1.0f;
		scale[b] = 0;
	}
	uint64_t st = seed;
	for (size_t p = 0; p < n_pairs; p++) {
		size_t i = (size_t)(knn_rand(&st) % t->n);
		size_t j = (size_t)(knn_rand(&st) % (t->n - 1));
		if (j >= i)
			j++;
		rank_distance(l, ones, row_vec(t, i, 0), row_vec(t, j, 0), part);
		for (size_t b = 0; b < l->n_blocks; b++)
			scale[b] += part[b];
	}
	for (size_t b = 0; b < l->n_blocks; b++)
		scale[b] /= (double)n_pairs;
	if (mean) {
		/* double accumulation, then one rounding: stable at 1M rows */
		double *acc = alloc_array_zero(t->dim, sizeof(*acc));
		if (!acc)
			return err_set(e, ERR_NOMEM, "calibration: out of memory for %zu components", t->dim);
		for (size_t r = 0; r < t->n; r++)
			for (size_t c = 0; c < t->dim; c++)
				acc[c] += row_vec(t, r, 0)[c];
		for (size_t c = 0; c < t->dim; c++)
			mean[c] = (float)(acc[c] / (double)t->n);
		xfree(acc);
	}
	return 0;
}

static int has_size_filter(const struct rank_query *q)
{
	return !isnan(q->size_min_mm) || !isnan(q->size_max_mm);
}

int rank_match(const struct ref_table *t, size_t row, const struct rank_query *q)
{
	if (has_size_filter(q)) {
		if (!t->size_mm)
			return 0;
		float s = t->size_mm[row];
		if (isnan(s))
			return 0;
		if (!isnan(q->size_min_mm) && (double)s < q->size_min_mm)
			return 0;
		if (!isnan(q->size_max_mm) && (double)s > q->size_max_mm)
			return 0;
	}
	for (size_t f = 0; f < q->n_filters; f++) {
		if (!t->meta)
			return 0;
		const char *v = t->meta(t->ctx, row, q->filters[f].key);
		if (!v || strcmp(v, q->filters[f].value))
			return 0;
	}
	return 1;
}

size_t rank_fetch(size_t k, int reweighted, int filtered)
{
	size_t f = k;
	if (reweighted || filtered) {
		f = k > SIZE_MAX / 10 ? SIZE_MAX : 10 * k;
		if (f < 200)
			f = 200;
	}
	return f < RANK_FETCH_MAX ? f : (k > RANK_FETCH_MAX ? k : RANK_FETCH_MAX);
}

/* Row of id in the ascending ids, or SIZE_MAX. */
static size_t row_of(const struct ref_table *t, int64_t id)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n && t->ids[lo] == id ? lo : SIZE_MAX;
}

/*
 * Exact scan: rows passing the filters (pass NULL = all), weighted
 * distance, kk best.  OUT: hd/hr (kk each, rows as int64), *n_out.
 */
static int scan_exact(const struct ref_table *t, const float *qv, const float *wd,
		      const struct fuse *F, const unsigned char *pass, size_t kk, float *hd, int64_t *hr,
		      size_t *n_out, struct err *e)
{
	int nt = omp_get_max_threads();
	size_t nth = nt > 0 ? (size_t)nt : 1;
	size_t cells;
	int rc = 0;
	if (ckd_mul(&cells, nth, kk))
		return err_set(e, ERR_NOMEM, "scan: %zu threads x %zu hits too large", nth, kk);
	float *td = alloc_array(cells, sizeof(*td));
	int64_t *ti = alloc_array(cells, sizeof(*ti));
	size_t *ts = alloc_array_zero(nth, sizeof(*ts));
	if (!td || !ti || !ts) {
		rc = err_set(e, ERR_NOMEM, "scan: out of memory for %zu heaps of %zu", nth, kk);
		goto out;
	}
	size_t nchunks = (t->n + RANK_SCAN_CHUNK - 1) / RANK_SCAN_CHUNK;
	/* one thread below 16 MiB of vectors, as in knn.c's scan */
	int par = t->n * t->dim >= ((size_t)1 << 22);
#pragma omp parallel num_threads(nt) if (par)
	{
		size_t me = (size_t)omp_get_thread_num();
		float *md = td + me * kk;
		int64_t *mi = ti + me * kk;
#pragma omp for schedule(static)
		for (size_t c = 0; c < nchunks; c++) {
			size_t r0 = c * RANK_SCAN_CHUNK;
			size_t r1 = r0 + RANK_SCAN_CHUNK < t->n ? r0 + RANK_SCAN_CHUNK : t->n;
			for (size_t r = r0; r < r1; r++) {
				if (pass && !pass[r])
					continue;
				float d = row_order(F, qv, t, r, wd, NULL);
				knn_heap_push(md, mi, &ts[me], kk, d, (int64_t)r);
			}
		}
	}
	size_t size = 0;
	for (size_t th = 0; th < nth; th++)
		for (size_t i = 0; i < ts[th]; i++)
			knn_heap_push(hd, hr, &size, kk, td[th * kk + i], ti[th * kk + i]);
	knn_heap_finish(hd, hr, size, kk);
	*n_out = size;
out:
	xfree(ts);
	xfree(ti);
	xfree(td);
	return rc;
}

/*
 * Filter candidate ids and keep the kk best by exact weighted distance in
 * the heap hd/hr (rows).  -1 ends the list (FAISS's padding).  OUT: *size
 * heap entries, *seen ids before the padding; res counts candidates and
 * filtered ones.  An id the table lacks is ERR_CORRUPT.
 */
static int rerank(const struct ref_table *t, const struct rank_query *q,
		  const float *wd, const struct fuse *F, const int64_t *cand, size_t n_cand, size_t kk,
		  float *hd, int64_t *hr, size_t *size, size_t *seen,
		  struct rank_result *res, struct err *e)
{
	int filtered = q->n_filters || has_size_filter(q);
	res->n_candidates = 0;
	res->n_filtered = 0;
	*size = 0;
	*seen = 0;
	for (size_t i = 0; i < n_cand; i++) {
		if (cand[i] < 0)
			break;
		(*seen)++;
		size_t r = row_of(t, cand[i]);
		if (r == SIZE_MAX)
			return err_set(e, ERR_CORRUPT, "index id %lld is not in the archive",
				       (long long)cand[i]);
		if (filtered && !rank_match(t, r, q)) {
			res->n_filtered++;
			continue;
		}
		res->n_candidates++;
		float d = row_order(F, q->vec, t, r, wd, NULL);
		knn_heap_push(hd, hr, size, kk, d, (int64_t)r);
	}
	return 0;
}

size_t rank_ann_rows(const struct ref_table *t, const struct rank_layout *l,
		     const float *w, const float *qv, float *rows)
{
	size_t d = l->dim, n = 1, weighted = 0;
	/* row 0: a dropped block (weight 0) takes the archive's mean block */
	memcpy(rows, qv, d * sizeof(*rows));
	for (size_t i = d - l->carried; i < d; i++)
		rows[i] = 0.0f; /* carried: the index holds 0 */
	for (size_t b = 0; b < l->n_blocks; b++) {
		weighted += w[b] > 0;
		if (w[b] == 0 && t->block_mean)
			memcpy(rows + l->blocks[b].offset, t->block_mean + l->blocks[b].offset,
			       l->blocks[b].len * sizeof(*rows));
	}
	if (!l->n_cues || !t->block_mean || weighted < 2)
		return 1;
	/* robust order: one more row per weighted block, that block too at the mean */
	for (size_t b = 0; b < l->n_blocks && n < RANK_MAX_ANN_ROWS; b++) {
		if (!(w[b] > 0))
			continue;
		float *r = rows + n * d;
		memcpy(r, rows, d * sizeof(*r));
		memcpy(r + l->blocks[b].offset, t->block_mean + l->blocks[b].offset,
		       l->blocks[b].len * sizeof(*r));
		n++;
	}
	return n;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

size_t rank_merge_ids(int64_t *ids, size_t n)
{
	qsort(ids, n, sizeof(*ids), cmp_id);
	size_t i = 0, m = 0;
	while (i < n && ids[i] < 0) /* FAISS pads with -1 */
		i++;
	for (; i < n; i++)
		if (m == 0 || ids[i] != ids[m - 1])
			ids[m++] = ids[i];
	return m;
}

/*
 * ANN path: fetch candidates, filter, re-rank exactly.  *done is 0 when
 * fewer than k survive after the largest fetch, so the caller scans.
 */
static int ann_rank(const struct ref_table *t, const struct rank_layout *l,
		    const struct knn *index, const struct rank_query *q,
		    const float *w, const float *wd, const struct fuse *F, size_t kk, float *hd,
		    int64_t *hr, size_t *n_out, struct rank_result *res,
		    int *done, struct err *e)
{
	int reweighted = 0, filtered = q->n_filters || has_size_filter(q);
	for (size_t b = 0; b < l->n_blocks; b++)
		reweighted |= w[b] != 1.0f;
	reweighted |= F->n > 0; /* the index orders by distance, not by match */
	size_t fetch = rank_fetch(kk, reweighted, filtered);
	float *qa = NULL, *cd = NULL;
	int64_t *ci = NULL;
	int rc = 0;
	*done = 0;

	qa = alloc_array(RANK_MAX_ANN_ROWS, l->dim * sizeof(*qa));
	if (!qa)
		return err_set(e, ERR_NOMEM, "out of memory for the query");
	size_t nrow = rank_ann_rows(t, l, w, q->vec, qa);

	for (;;) {
		if (fetch > t->n)
			fetch = t->n;
		xfree(cd);
		xfree(ci);
		cd = alloc_array(nrow, fetch * sizeof(*cd));
		ci = alloc_array(nrow, fetch * sizeof(*ci));
		if (!cd || !ci) {
			rc = err_set(e, ERR_NOMEM, "out of memory for %zu candidates", fetch);
			goto out;
		}
		rc = knn_search(index, nrow, qa, fetch, cd, ci, e);
		if (rc)
			goto out;
		res->n_fetched = fetch;
		size_t size = 0, seen = 0;
		size_t ncand = rank_merge_ids(ci, nrow * fetch);
		rc = rerank(t, q, wd, F, ci, ncand, kk, hd, hr, &size, &seen, res, e);
		if (rc)
			goto out;
		/*
		 * Done with k hits, or when the index returned every reference.
		 * An IVF index returns only what its probed lists hold, so a
		 * short answer at the largest fetch means: scan.
		 */
		if (size >= kk || seen == t->n) {
			knn_heap_finish(hd, hr, size, kk);
			*n_out = size;
			*done = 1;
			break;
		}
		if (fetch >= RANK_FETCH_MAX || fetch >= t->n)
			break; /* too selective for the index: scan */
		fetch = fetch > RANK_FETCH_MAX / 2 ? RANK_FETCH_MAX : fetch * 2;
	}
out:
	xfree(ci);
	xfree(cd);
	xfree(qa);
	return rc;
}

/*
 * Checks and setup shared by rank_search() and rank_candidates(): OUT w
 * (block weights), res zeroed with its scale.
 */
static int prepare(const struct ref_table *t, const struct rank_layout *l,
		   const struct rank_query *q, float *w, struct rank_result *res,
		   struct err *e)
{
	double scale_buf[RANK_MAX_BLOCKS];
	memset(res, 0, sizeof(*res));
	if (q->k == 0 || q->k > RANK_MAX_K)
		return err_set(e, ERR_LIMIT, "k %zu out of range (1..%u)", q->k, RANK_MAX_K);
	if (t->dim != l->dim)
		return err_set(e, ERR_FORMAT, "table dimension %zu does not match layout dimension %zu",
			       t->dim, l->dim);
	for (size_t c = 0; c < l->dim; c++)
		if (!isfinite(q->vec[c]))
			return err_set(e, ERR_FORMAT, "query component %zu is not finite", c);
	if (!(q->keep >= 0 && q->keep <= 1))
		return err_set(e, ERR_FORMAT, "share of cues kept %g is not in (0, 1]", q->keep);
	int rc = rank_weights(l, q, w, e);
	if (rc)
		return rc;
	const double *bs = t->block_scale;
	if (!bs && t->n >= 2) {
		rc = rank_calibrate(t, l, 0, RANK_CALIBRATION_SEED, scale_buf, NULL, e);
		if (rc)
			return rc;
		bs = scale_buf;
	}
	res->scale = bs ? rank_scale(l, w, bs) : 0;
	return 0;
}

/* Fill hits from the finished heap rows hr[0..n_out): parts, score, order. */
static void emit(const struct ref_table *t, const struct rank_layout *l,
		 const float *w, const float *wd, const struct fuse *F, const struct rank_query *q,
		 const int64_t *hr, size_t n_out, struct rank_hit *hits,
		 struct rank_result *res)
{
	for (size_t i = 0; i < n_out; i++) {
		struct rank_hit *h = &hits[i];
		size_t r = (size_t)hr[i];
		memset(h, 0, sizeof(*h));
		h->row = r;
		h->id = t->ids[r];
		(void)row_order(F, q->vec, t, r, wd, &h->view);
		const float *v = row_vec(t, r, h->view);
		float pen = h->view ? (float)(1.0 + RANK_VIEW_PENALTY) : 1.0f;
		/* parts recomputed per block; dist is their sum so they match */
		h->dist = rank_distance(l, w, q->vec, v, h->part);
		if (F->n) {
			h->match = pen * fuse_match_kept(F, q->vec, v, &h->kept);
			h->score = (float)(100.0 * exp(-RANK_FUSE_K * (double)h->match));
		} else {
			h->match = pen * h->dist;
			h->score = rank_score(h->match, res->scale);
		}
	}
	/*
	 * The scan summed the whole vector at once; the reported distance is
	 * the sum of the parts.  They can differ in the last bit, so order
	 * by what is reported (insertion sort: k is small and nearly sorted).
	 */
	for (size_t i = 1; i < n_out; i++) {
		struct rank_hit h = hits[i];
		size_t j = i;
		while (j > 0 && (hits[j - 1].match > h.match ||
				 (hits[j - 1].match == h.match && hits[j - 1].row > h.row))) {
			hits[j] = hits[j - 1];
			j--;
		}
		hits[j] = h;
	}
	res->n_hits = n_out;
	res->n_cues = F->n;
	res->unlike = F->noise != SIZE_MAX ? F->unlike : 0;
}

/*
 * What one ranking holds: block weights, their per-component expansion,
 * the top-k heap (kk entries) and the robust order's state.
 */
struct ranking {
	float w[RANK_MAX_BLOCKS];
	float *wd, *hd;
	int64_t *hr;
	size_t kk;
	struct fuse F;
};

static void ranking_close(struct ranking *g)
{
	xfree(g->hr);
	xfree(g->hd);
	xfree(g->wd);
	memset(g, 0, sizeof(*g));
}

/*
 * Checks (prepare, and index's dimension when there is one), allocations
 * and the robust order's medians.
 */
static int ranking_open(struct ranking *g, const struct ref_table *t,
			const struct rank_layout *l, const struct knn *index,
			const struct rank_query *q, struct rank_result *res, struct err *e)
{
	memset(g, 0, sizeof(*g));
	int rc = prepare(t, l, q, g->w, res, e);
	if (rc)
		return rc;
	if (index && index->d != l->dim)
		return err_set(e, ERR_FORMAT, "index dimension %zu does not match layout dimension %zu",
			       index->d, l->dim);
	g->kk = q->k;
	g->wd = alloc_array(l->dim, sizeof(*g->wd));
	g->hd = alloc_array(g->kk, sizeof(*g->hd));
	g->hr = alloc_array(g->kk, sizeof(*g->hr));
	if (!g->wd || !g->hd || !g->hr) {
		rc = err_set(e, ERR_NOMEM, "out of memory for %zu hits", g->kk);
		goto fail;
	}
	expand_weights(l, g->w, g->wd);
	if ((rc = fuse_prepare(t, l, g->w, q->vec, q->keep, &g->F, e)) < 0)
		goto fail;
	return 0;
fail:
	ranking_close(g);
	return rc;
}

int rank_search(const struct ref_table *t, const struct rank_layout *l,
		const struct knn *index, const struct rank_query *q,
		struct rank_hit *hits, struct rank_result *res, struct err *e)
{
	struct ranking g;
	unsigned char *pass = NULL;
	size_t n_out = 0;
	int rc = ranking_open(&g, t, l, index, q, res, e);
	if (rc)
		return rc;

	int done = 0;
	if (index && index->kind != KNN_EXACT && !(q->flags & RANK_EXACT) && t->n) {
		rc = ann_rank(t, l, index, q, g.w, g.wd, &g.F, g.kk, g.hd, g.hr, &n_out, res,
			      &done, e);
		if (rc)
			goto out;
	}
	if (!done) {
		int filtered = q->n_filters || has_size_filter(q);
		res->exact = 1;
		res->n_fetched = 0;
		res->n_filtered = 0;
		res->n_candidates = t->n;
		if (filtered) {
			pass = xmalloc(t->n ? t->n : 1);
			if (!pass) {
				rc = err_set(e, ERR_NOMEM, "out of memory for %zu filter flags", t->n);
				goto out;
			}
			for (size_t r = 0; r < t->n; r++) {
				pass[r] = (unsigned char)rank_match(t, r, q);
				res->n_filtered += !pass[r];
			}
			res->n_candidates = t->n - res->n_filtered;
		}
		rc = scan_exact(t, q->vec, g.wd, &g.F, pass, g.kk, g.hd, g.hr, &n_out, e);
		if (rc)
			goto out;
	}
	emit(t, l, g.w, g.wd, &g.F, q, g.hr, n_out, hits, res);
out:
	xfree(pass);
	ranking_close(&g);
	return rc;
}

int rank_candidates(const struct ref_table *t, const struct rank_layout *l,
		    const struct rank_query *q, const int64_t *cand,
		    size_t n_cand, struct rank_hit *hits,
		    struct rank_result *res, struct err *e)
{
	struct ranking g;
	size_t size = 0, seen = 0;
	int rc = ranking_open(&g, t, l, NULL, q, res, e);
	if (rc)
		return rc;
	rc = rerank(t, q, g.wd, &g.F, cand, n_cand, g.kk, g.hd, g.hr, &size, &seen, res, e);
	if (rc)
		goto out;
	res->n_fetched = n_cand;
	knn_heap_finish(g.hd, g.hr, size, g.kk);
	emit(t, l, g.w, g.wd, &g.F, q, g.hr, size, hits, res);
out:
	ranking_close(&g);
	return rc;
}
