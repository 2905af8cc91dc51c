/*
 * test_rank.c - exact weighted re-ranking (query/rank.c) on constructed
 * descriptors whose distances are worked out by hand: block weights
 * reorder hits, a colourless query drops the colour block, filters on
 * metadata and size, scores fall with distance, explain parts sum to the
 * distance, and the ANN path agrees with the exact scan.
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

#include <cmocka.h>

#include "alloc.h"
#include "err.h"
#include "query/knn.h"
#include "query/rank.h"

#include "banned.h"

/* d = 8: shape 2, local 2, relief 1, colour 2, size 1 */
static const struct rank_block blocks8[] = {
	{ "shape", 0, 2 }, { "local", 2, 2 }, { "relief", 4, 1 },
	{ "colour", 5, 2 }, { "size", 7, 1 },
};
static const struct rank_layout layout8 = { 1, 8, 5, blocks8, 0, NULL, 0, NULL };
enum { SHAPE, LOCAL, RELIEF, COLOUR, SIZE };

/*
 * Four references around a query at the origin:
 *   id 10 (A): shape (1, 0)                   -> shape 1
 *   id 20 (B): colour (1.2, 0)                -> colour 1.44
 *   id 30 (C): local (0.5, 0.5), relief 0.5   -> local 0.5 + relief 0.25
 *   id 40 (D): size 2, shape (0, 0.5)         -> size 4 + shape 0.25
 */
static const float vecs4[4 * 8] = {
	1, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 1.2f, 0, 0,
	0, 0, 0.5f, 0.5f, 0.5f, 0, 0, 0,
	0, 0.5f, 0, 0, 0, 0, 0, 2,
};
static const int64_t ids4[4] = { 10, 20, 30, 40 };
static const float origin[8] = { 0 };

struct meta_rows {
	const char *material[4];
	const char *author[4];
};

static const char *meta_get(void *ctx, size_t row, const char *key)
{
	const struct meta_rows *m = ctx;
	if (!strcmp(key, "material"))
		return m->material[row];
	if (!strcmp(key, "author"))
		return m->author[row];
	return NULL;
}

static struct meta_rows meta4 = {
	{ "skin", "bark", "skin", "stone" },
	{ "ana", "ana", NULL, "bo" },
};
static const float size4[4] = { 12.0f, 40.0f, NAN, 25.0f };

static void table4(struct ref_table *t)
{
	memset(t, 0, sizeof(*t));
	t->n = 4;
	t->dim = 8;
	t->ids = ids4;
	t->vecs = vecs4;
	t->size_mm = size4;
	t->meta = meta_get;
	t->ctx = &meta4;
}

static void run(const struct ref_table *t, const struct rank_query *q,
		struct rank_hit *hits, struct rank_result *res)
{
	struct err e;
	err_init(&e);
	int rc = rank_search(t, &layout8, NULL, q, hits, res, &e);
	if (rc)
		fail_msg("rank_search: %s", e.msg);
}

static void assert_ids(const struct rank_hit *h, const struct rank_result *r,
		       const int64_t *want, size_t n)
{
	assert_int_equal(r->n_hits, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].id, want[i]);
}

static void assert_near(double a, double b)
{
	if (fabs(a - b) > 1e-5 * (fabs(b) + 1))
		fail_msg("%.9g != %.9g", a, b);
}

/*
 * Views: three references with one view each (layout8, no cues: plain
 * weighted distance).  A query that is one reference's view finds that
 * reference through it; a view must beat the whole by the penalty.
 */
static void test_rank_views_by_hand(void **state)
{
	(void)state;
	/* per reference: own vector, then its view */
	static const float rec[3 * 2 * 8] = {
		/* id 1: whole at shape (1, 0); view at shape (3, 0) */
		1, 0, 0, 0, 0, 0, 0, 0,   3, 0, 0, 0, 0, 0, 0, 0,
		/* id 2: whole at shape (0, 2); view at local (0.5, 0) */
		0, 2, 0, 0, 0, 0, 0, 0,   0, 0, 0.5f, 0, 0, 0, 0, 0,
		/* id 3: whole at relief 1.05; view far */
		0, 0, 0, 0, 1.05f, 0, 0, 0,   0, 0, 0, 0, 0, 0, 0, 9,
	};
	static const int64_t ids[3] = { 1, 2, 3 };
	struct ref_table t = { .n = 3, .dim = 8, .views = 1, .ids = ids, .vecs = rec };
	struct rank_hit h[3];
	struct rank_result res;
	struct rank_query q;
	struct err e;
	err_init(&e);
	assert_int_equal(rank_table_check(&t, &layout8, &e), 0);

	/* at the origin: 2's view (0.25 x 1.3 = 0.325) before 1's whole (1) and 3's (1.1025) */
	rank_query_init(&q, origin, 3);
	q.flags = RANK_EXACT;
	run(&t, &q, h, &res);
	assert_ids(h, &res, (const int64_t[]){ 2, 1, 3 }, 3);
	assert_int_equal(h[0].view, 1);
	assert_near(h[0].dist, 0.25);
	assert_near(h[0].match, 0.25 * (1 + RANK_VIEW_PENALTY));
	assert_near(h[0].part[LOCAL], 0.25);
	assert_int_equal(h[1].view, 0);
	assert_near(h[1].match, 1.0);
	assert_int_equal(h[2].view, 0);
	assert_near(h[2].match, 1.05 * 1.05);

	/* query at shape (2.9, 0): 1's view 0.01 x 1.3; its whole 3.61 */
	const float qv[8] = { 2.9f, 0, 0, 0, 0, 0, 0, 0 };
	rank_query_init(&q, qv, 1);
	run(&t, &q, h, &res);
	assert_int_equal(h[0].id, 1);
	assert_int_equal(h[0].view, 1);
	assert_near(h[0].match, 0.01 * (1 + RANK_VIEW_PENALTY));

	/* a view as close as another's whole loses to it by the penalty */
	static const float tie[2 * 2 * 8] = {
		1, 0, 0, 0, 0, 0, 0, 0,   9, 0, 0, 0, 0, 0, 0, 0,
		9, 0, 0, 0, 0, 0, 0, 0,   0, 1, 0, 0, 0, 0, 0, 0,
	};
	static const int64_t tid[2] = { 5, 6 };
	struct ref_table t2 = { .n = 2, .dim = 8, .views = 1, .ids = tid, .vecs = tie };
	rank_query_init(&q, origin, 2);
	run(&t2, &q, h, &res);
	assert_ids(h, &res, (const int64_t[]){ 5, 6 }, 2);
	assert_int_equal(h[0].view, 0);
	assert_int_equal(h[1].view, 1);
	assert_true(h[1].score < h[0].score);

	/* calibration and the mean are over the scans' own vectors only */
	double sc[5], sc0[5];
	float mean[8];
	assert_int_equal(rank_calibrate(&t, &layout8, 64, 7, sc, mean, &e), 0);
	assert_near(mean[0], 1.0 / 3);
	assert_near(mean[1], 2.0 / 3);
	assert_near(mean[4], 1.05 / 3);
	assert_near(mean[7], 0);
	static float own[3 * 8];
	for (int r = 0; r < 3; r++)
		memcpy(own + r * 8, rec + r * 16, 8 * sizeof(float));
	struct ref_table t0 = { .n = 3, .dim = 8, .ids = ids, .vecs = own };
	assert_int_equal(rank_calibrate(&t0, &layout8, 64, 7, sc0, NULL, &e), 0);
	for (int b = 0; b < 5; b++)
		assert_near(sc[b], sc0[b]);
}

static void test_rank_layout_and_table_checks(void **state)
{
	(void)state;
	struct err e;
	err_init(&e);
	assert_int_equal(rank_layout_check(&layout8, &e), 0);
	struct rank_block gap[] = { { "shape", 0, 2 }, { "colour", 3, 5 } };
	struct rank_layout l = { 1, 8, 2, gap, 0, NULL, 0, NULL };
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout block 'colour' starts at 3, expected 2");
	struct rank_block dup[] = { { "shape", 0, 4 }, { "shape", 4, 4 } };
	l.blocks = dup;
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout block 'shape' appears twice");
	struct rank_block short_[] = { { "shape", 0, 4 }, { "size", 4, 2 } };
	l.blocks = short_;
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout blocks cover 6 of 8 components, 0 carried");

	struct ref_table t;
	table4(&t);
	assert_int_equal(rank_table_check(&t, &layout8, &e), 0);
	int64_t bad[4] = { 10, 30, 30, 40 };
	t.ids = bad;
	assert_int_equal(rank_table_check(&t, &layout8, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "row 2: id 30 not above previous id 30");
}

/*
 * The robust order (rank.h) by hand.  Four one-component blocks, each a
 * cue; the query is the origin.  P agrees on three cues and is far on the
 * fourth (a crop spoils one part); U is moderately off everywhere and wins
 * the plain sum (4 < 25).  Cue medians of the squared distances over the
 * five rows: a, b, c: 4; d: 9.  With x_c = |q_c - r_c| / sqrt(median_c)
 * sorted, the match is (x1 + x2 + t (x3 + x4)) / (2 + 2 t), t the tail
 * weight RANK_FUSE_TAIL:
 *   P (0,0,0,5): 0, 0 | 0, 5/3
 *   U (1,1,1,1): 1/3, 1/2 | 1/2, 1/2
 *   3 (2,2,2,2): 2/3, 1 | 1, 1
 *   5 (2,3,2,3): 1, 1 | 1, 3/2
 *   4 (3,3,3,3): 1, 3/2 | 3/2, 3/2
 */
#define TAIL RANK_FUSE_TAIL
#define M4(a, b, c, d) (((a) + (b) + TAIL * ((c) + (d))) / (2 + 2 * TAIL))
static const struct rank_block blocks4[] = {
	{ "shape", 0, 1 }, { "local", 1, 1 }, { "relief", 2, 1 }, { "size", 3, 1 },
};
static const struct rank_cue cues4[] = {
	{ "a", 0, 0, 1, 0 }, { "b", 1, 1, 1, 0 }, { "c", 2, 2, 1, 0 }, { "d", 3, 3, 1, 0 },
};
static const float vecs5[5 * 4] = {
	0, 0, 0, 5,
	1, 1, 1, 1,
	2, 2, 2, 2,
	3, 3, 3, 3,
	2, 3, 2, 3,
};
static const int64_t ids5[5] = { 1, 2, 3, 4, 5 };

static void test_rank_robust_order_by_hand(void **state)
{
	(void)state;
	struct rank_layout l = { 1, 4, 4, blocks4, 4, cues4, 0, NULL };
	struct ref_table t = { .n = 5, .dim = 4, .ids = ids5, .vecs = vecs5 };
	struct rank_hit hits[5];
	struct rank_result res;
	struct rank_query q;
	struct err e;
	err_init(&e);
	assert_int_equal(rank_layout_check(&l, &e), 0);
	rank_query_init(&q, origin, 5);
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	const int64_t want[5] = { 1, 2, 3, 5, 4 };
	const double match[5] = {
		M4(0, 0, 0, 5.0 / 3), M4(1.0 / 3, 0.5, 0.5, 0.5), M4(2.0 / 3, 1, 1, 1),
		M4(1, 1, 1, 1.5), M4(1, 1.5, 1.5, 1.5),
	};
	assert_ids(hits, &res, want, 5);
	assert_int_equal(res.n_cues, 4);
	for (size_t i = 0; i < 5; i++) {
		assert_near(hits[i].match, match[i]);
		assert_near(hits[i].score, 100.0 * exp(-RANK_FUSE_K * match[i]));
	}
	/* what each match rests on: P on a and b (0, 0; ties: the earlier
	 * cue), U on d (1/3) and a (1/2) */
	assert_int_equal(hits[0].kept, 0x3);
	assert_int_equal(hits[1].kept, 0x9);
	/* dist and its parts stay the plain weighted distance (--explain) */
	assert_near(hits[0].dist, 25);
	assert_near(hits[0].part[3], 25);
	assert_near(hits[1].dist, 4);

	/* without cues the same table orders by distance: U first */
	struct rank_layout plain = { 1, 4, 4, blocks4, 0, NULL, 0, NULL };
	assert_int_equal(rank_search(&t, &plain, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(hits[0].id, 2);
	assert_int_equal(res.n_cues, 0);

	/* a cue of weight 0 is left out: 3 cues, keep 1 (the best) */
	float w[4] = { 1, 1, 1, 0 };
	q.weights = w;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(res.n_cues, 3);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, 0);
	assert_near(hits[1].match, (0.5 + TAIL * 1.0) / (1 + 2 * TAIL));
	/* a weight scales its cue by its square root */
	float w4[4] = { 4, 4, 4, 4 };
	q.weights = w4;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(hits[1].match, 2 * M4(1.0 / 3, 0.5, 0.5, 0.5));

	/* keep every cue: the mean of all four */
	q.weights = NULL;
	q.keep = 1.0;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, (5.0 / 3) / 4);
	assert_near(hits[1].match, (1.5 + 1.0 / 3) / 4);
	q.keep = 1.5;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "share of cues kept 1.5 is not in (0, 1]");
	q.keep = 0;

	/* candidates re-ranked the same way */
	assert_int_equal(rank_candidates(&t, &l, &q, ids5, 5, hits, &res, &e), 0);
	assert_ids(hits, &res, want, 5);
	assert_near(hits[1].match, M4(1.0 / 3, 0.5, 0.5, 0.5));
}

/* A cue that does not vary (median 0) cannot tell references apart: dropped. */
static void test_rank_robust_skips_constant_cue(void **state)
{
	(void)state;
	static const float v[3 * 4] = {
		0, 1, 0, 0,
		0, 0, 2, 0,
		0, 3, 3, 0,
	};
	static const int64_t ids[3] = { 7, 8, 9 };
	struct rank_layout l = { 1, 4, 4, blocks4, 4, cues4, 0, NULL };
	struct ref_table t = { .n = 3, .dim = 4, .ids = ids, .vecs = v };
	struct rank_hit hits[3];
	struct rank_result res;
	struct rank_query q;
	struct err e;
	err_init(&e);
	rank_query_init(&q, origin, 3);
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	/* cues b (median 1) and c (median 4) remain: keep 1 */
	assert_int_equal(res.n_cues, 2);
	const int64_t want[3] = { 7, 8, 9 };
	assert_ids(hits, &res, want, 3);
	/* kept: the smaller of b and c; the other weighs TAIL */
	assert_near(hits[0].match, TAIL * 1 / (1 + TAIL));   /* c 0 | b 1 */
	assert_near(hits[1].match, TAIL * 1 / (1 + TAIL));   /* b 0 | c 1 */
	/* c 3/2 | b 3, which counts as RANK_FUSE_CAP: far is far */
	assert_near(hits[2].match, (1.5 + TAIL * RANK_FUSE_CAP) / (1 + TAIL));
}

static void test_rank_robust_layout_checks(void **state)
{
	(void)state;
	struct err e;
	err_init(&e);
	struct rank_cue out_of_block[] = { { NULL, 0, 0, 2, 0 } };
	struct rank_layout l = { 1, 4, 4, blocks4, 1, out_of_block, 0, NULL };
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout cue 0 (0+2) is not inside block 'shape'");
	struct rank_cue no_block[] = { { NULL, 4, 0, 1, 0 } };
	l.cues = no_block;
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout cue 0 names block 4 of 4");
}

/*
 * Noise (rank.h): the four cues of cues4, b fine, and one carried
 * component, the noise level.  P (row 1) is the query's own reference: a
 * noisy query lost its fine cue b and part of d.  U (row 2) agrees with
 * the query on b by chance.  Medians of the squared cue distances over
 * the five rows: a 4, b 9, c 4, d 9.
 *   every cue:   P 0, 1/2 | 1, 1  -> M4 = 0.2857   U 0, 1/2 | 2/3, 1 -> 0.2778
 *   b left out:  P 0 | 1/2, 1     -> 0.0682        U 1/2 | 2/3, 1    -> 0.5303
 */
#define M3(a, b, c) (((a) + TAIL * ((b) + (c))) / (1 + 2 * TAIL))
static double tol_third(const float *vec)
{
	return 0.2 * vec[2];
}

static void test_rank_noise_leaves_fine_cues_out(void **state)
{
	(void)state;
	struct rank_cue cues[4];
	memcpy(cues, cues4, sizeof(cues));
	cues[1].fine = 1;
	struct rank_layout l = { 1, 5, 4, blocks4, 4, cues, 1, NULL };
	float v[5 * 5] = {
		0, 3, 1, 3, 0.01f,
		1, 0, 2, 2, 0.01f,
		2, 2, 2, 2, 0.01f,
		3, 3, 3, 3, 0.01f,
		2, 3, 2, 3, 0.01f,
	};
	struct ref_table t = { .n = 5, .dim = 5, .ids = ids5, .vecs = v };
	float qv[5] = { 0, 0, 0, 0, 0.3f };
	struct rank_hit hits[5];
	struct rank_result res;
	struct rank_query q;
	struct err e;
	err_init(&e);
	assert_int_equal(rank_layout_check(&l, &e), 0);
	rank_query_init(&q, qv, 5);

	/* 0.3 against 0.01 (RANK_NOISE_FLOOR at least): every pair unlike,
	 * b left out */
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 1.0);
	assert_int_equal(hits[0].id, 1);
	assert_int_equal(hits[1].id, 2);
	assert_near(hits[0].match, M3(0, 0.5, 1));
	assert_near(hits[1].match, M3(0.5, 2.0 / 3, 1));
	assert_int_equal(hits[0].kept, 0x1);
	/* the carried level is not compared: dist is the blocks' own */
	assert_near(hits[0].dist, 0 + 9 + 1 + 9);
	/* re-ranked candidates agree with the scan */
	assert_int_equal(rank_candidates(&t, &l, &q, ids5, 5, hits, &res, &e), 0);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, M3(0, 0.5, 1));

	/* just under RANK_NOISE_RATIO times the floor: alike, every cue
	 * compared, U first */
	qv[4] = (float)(0.95 * RANK_NOISE_RATIO * RANK_NOISE_FLOOR);
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0);
	assert_int_equal(hits[0].id, 2);
	assert_near(hits[0].match, M4(0, 0.5, 2.0 / 3, 1));
	assert_near(hits[1].match, M4(0, 0.5, 1, 1));
	/* just over it: unlike again */
	qv[4] = (float)(1.05 * RANK_NOISE_RATIO * RANK_NOISE_FLOOR);
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(hits[0].id, 1);

	/* pair by pair: P as noisy as the query compares b, U does not */
	qv[4] = 0.3f;
	v[4] = 0.25f;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0.8);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, M4(0, 0.5, 1, 1));
	assert_near(hits[1].match, M3(0.5, 2.0 / 3, 1));
	v[4] = 0.01f;

	/*
	 * With a tolerance (here 0.2 times a vector's third component): a
	 * pair of unlike levels keeps its fine cues when the noisier level
	 * is within what the cleaner vector tolerates.  P tolerates 0.2, U
	 * and the others 0.4 or more: against the query's 0.3 only P leaves
	 * b out, and U is compared on every cue.
	 */
	l.fine_tolerance = tol_third;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0.2);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, M3(0, 0.5, 1));
	assert_int_equal(hits[1].id, 2);
	assert_near(hits[1].match, M4(0, 0.5, 2.0 / 3, 1));
	/* at 0.15 (still unlike every level) P tolerates it too: every cue
	 * is compared and U wins, as for a pair of alike noise */
	qv[4] = 0.15f;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0);
	assert_int_equal(hits[0].id, 2);
	assert_near(hits[0].match, M4(0, 0.5, 2.0 / 3, 1));
	assert_near(hits[1].match, M4(0, 0.5, 1, 1));
	/* the other way round: a reference (U) noisier than a clean query is
	 * judged by what the query tolerates: 0 here, so U leaves b out */
	qv[4] = 0.01f;
	v[5 + 4] = 0.3f;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0.2);
	assert_int_equal(hits[0].id, 1);
	assert_near(hits[0].match, M4(0, 0.5, 1, 1));
	qv[2] = 2; /* now the query tolerates 0.4: no pair leaves b out */
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0);
	qv[2] = 0;
	qv[4] = 0.3f;
	v[5 + 4] = 0.01f;
	l.fine_tolerance = NULL;

	/* without the carried level nothing is left out */
	struct rank_block wide[4];
	memcpy(wide, blocks4, sizeof(wide));
	wide[3].len = 2;
	struct rank_layout none = { 1, 5, 4, wide, 4, cues, 0, NULL };
	assert_int_equal(rank_layout_check(&none, &e), 0);
	assert_int_equal(rank_search(&t, &none, NULL, &q, hits, &res, &e), 0);
	assert_near(res.unlike, 0);
	assert_int_equal(hits[0].id, 2);

	/* nothing weighted but fine cues: they are compared after all */
	struct rank_cue all[4];
	memcpy(all, cues, sizeof(all));
	for (size_t c = 0; c < 4; c++)
		all[c].fine = 1;
	l.cues = all;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(res.n_cues, 4);
	assert_int_equal(hits[0].id, 2);
	assert_near(hits[0].match, M4(0, 0.5, 2.0 / 3, 1));
	l.cues = cues;
	float only_b[4] = { 0, 1, 0, 0 };
	q.weights = only_b;
	assert_int_equal(rank_search(&t, &l, NULL, &q, hits, &res, &e), 0);
	assert_int_equal(res.n_cues, 1);
	assert_int_equal(hits[0].id, 2);
	assert_near(hits[0].match, 0);
	q.weights = NULL;

	/* the ANN rows carry 0 where the index holds 0 */
	float mean[5] = { 1, 1, 1, 1, 0.5f }, rows[RANK_MAX_ANN_ROWS * 5];
	float w[4] = { 1, 1, 1, 1 };
	t.block_mean = mean;
	size_t nr = rank_ann_rows(&t, &l, w, qv, rows);
	assert_int_equal(nr, 5);
	for (size_t r = 0; r < nr; r++)
		assert_true(rows[r * 5 + 4] == 0.0f);

	/* carried components must follow the blocks exactly */
	l.carried = 2;
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "layout blocks cover 4 of 5 components, 2 carried");
	l.carried = 6;
	assert_int_equal(rank_layout_check(&l, &e), ERR_FORMAT);
}

/* Distances by hand; weights move references past each other. */
static void test_rank_weights_change_order(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	table4(&t);
	rank_query_init(&q, origin, 4);

	/* as indexed: C 0.75, A 1, B 1.44, D 4.25 */
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 30, 10, 20, 40 }, 4);
	assert_near(h[0].dist, 0.75);
	assert_near(h[1].dist, 1.0);
	assert_near(h[2].dist, 1.44);
	assert_near(h[3].dist, 4.25);
	assert_int_equal(r.exact, 1);
	assert_int_equal(r.n_candidates, 4);

	/* shape x2: A 2, D 4.5 */
	float w[5] = { 2, 1, 1, 1, 1 };
	q.weights = w;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 30, 20, 10, 40 }, 4);
	assert_near(h[2].dist, 2.0);
	assert_near(h[3].dist, 4.5);

	/* colour x0.25 and size x0.1: B 0.36, D 0.4 + 0.25 */
	float w2[5] = { 1, 1, 1, 0.25f, 0.1f };
	q.weights = w2;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 20, 40, 30, 10 }, 4);
	assert_near(h[0].dist, 0.36);
	assert_near(h[1].dist, 0.65);

	/* relief and local off: C is identical to the query */
	float w3[5] = { 1, 0, 0, 1, 1 };
	q.weights = w3;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 30, 10, 20, 40 }, 4);
	assert_true(h[0].dist == 0.0f);
	assert_true(h[0].score == 100.0f);

	/* k smaller than the table keeps the best */
	q.weights = NULL;
	q.k = 2;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 30, 10 }, 2);
}

/* A colourless query drops the colour block, whatever its weight. */
static void test_rank_no_colour_drops_colour_block(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	struct err e;
	table4(&t);
	rank_query_init(&q, origin, 4);
	float w[5] = { 1, 1, 1, 3, 1 };
	q.weights = w;
	q.flags = RANK_NO_COLOUR;

	float eff[5];
	err_init(&e);
	assert_int_equal(rank_weights(&layout8, &q, eff, &e), 0);
	assert_true(eff[COLOUR] == 0.0f);
	assert_true(eff[SHAPE] == 1.0f);

	/* B differs from the query only in colour: now a perfect match */
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 20, 30, 10, 40 }, 4);
	assert_true(h[0].dist == 0.0f);
	for (size_t i = 0; i < 4; i++)
		assert_true(h[i].part[COLOUR] == 0.0f);

	/* a query whose only non-zero weight is colour has nothing left */
	float only[5] = { 0, 0, 0, 1, 0 };
	q.weights = only;
	err_init(&e);
	assert_int_equal(rank_search(&t, &layout8, NULL, &q, h, &r, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "every block weight is 0");
}

/* --explain: parts are w_b * ||q_b - r_b||^2 and sum to the distance. */
static void test_rank_explain_parts_sum_to_distance(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	table4(&t);
	const float qv[8] = { 0.25f, 0.5f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 1.0f };
	rank_query_init(&q, qv, 4);
	float w[5] = { 1.5f, 0.5f, 2, 0.75f, 0.2f };
	q.weights = w;
	run(&t, &q, h, &r);
	assert_int_equal(r.n_hits, 4);
	for (size_t i = 0; i < 4; i++) {
		const float *v = vecs4 + h[i].row * 8;
		double sum = 0;
		for (size_t b = 0; b < 5; b++) {
			double bd = 0;
			for (size_t c = 0; c < blocks8[b].len; c++) {
				double x = (double)qv[blocks8[b].offset + c] - v[blocks8[b].offset + c];
				bd += x * x;
			}
			assert_near(h[i].part[b], w[b] * bd);
			sum += h[i].part[b];
		}
		assert_near(h[i].dist, sum);
		assert_int_equal(ids4[h[i].row], h[i].id);
		if (i)
			assert_true(h[i].dist >= h[i - 1].dist);
	}
	/* D by hand: shape .0625+0, local .01+.04, relief .09, colour .16+.25, size 1 */
	size_t d_at = 0;
	while (h[d_at].id != 40)
		d_at++;
	assert_near(h[d_at].part[SHAPE], 1.5 * 0.0625);
	assert_near(h[d_at].part[LOCAL], 0.5 * 0.05);
	assert_near(h[d_at].part[RELIEF], 2 * 0.09);
	assert_near(h[d_at].part[COLOUR], 0.75 * 0.41);
	assert_near(h[d_at].part[SIZE], 0.2 * 1.0);
}

/* Scores: 100 at 0, ~5 at the calibrated scale, strictly falling. */
static void test_rank_score_monotonic(void **state)
{
	(void)state;
	assert_true(rank_score(0.0f, 2.0) == 100.0f);
	assert_near(rank_score(2.0f, 2.0), 100.0 * exp(-RANK_SCORE_K));
	assert_near(rank_score(2.0f * (float)(log(2.0) / RANK_SCORE_K), 2.0), 50.0);
	float prev = 101.0f;
	for (float d = 0; d < 10.0f; d += 0.05f) {
		float s = rank_score(d, 1.5);
		assert_true(s < prev);
		assert_true(s >= 0 && s <= 100);
		prev = s;
	}
	assert_true(rank_score(1.0f, 0.0) == 0.0f);

	/* the scale is linear in the weights: s_b weighted */
	const double bs[5] = { 1, 2, 3, 4, 5 };
	const float w[5] = { 1, 0.5f, 0, 2, 0.1f };
	assert_near(rank_scale(&layout8, w, bs), 1 + 1 + 0 + 8 + 0.5);

	/* hits come out with falling scores */
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	table4(&t);
	t.block_scale = bs;
	rank_query_init(&q, origin, 4);
	run(&t, &q, h, &r);
	assert_near(r.scale, 15.0);
	for (size_t i = 1; i < 4; i++)
		assert_true(h[i].score < h[i - 1].score);
	assert_near(h[0].score, 100.0 * exp(-RANK_SCORE_K * 0.75 / 15.0));
}

/* Calibration on two rows is their per-block distance; mean is the middle. */
static void test_rank_calibrate_by_hand(void **state)
{
	(void)state;
	struct ref_table t;
	table4(&t);
	t.n = 2; /* A and B */
	double s[5];
	float mean[8];
	struct err e;
	err_init(&e);
	assert_int_equal(rank_calibrate(&t, &layout8, 100, 1, s, mean, &e), 0);
	assert_near(s[SHAPE], 1.0);
	assert_near(s[COLOUR], 1.44);
	assert_near(s[LOCAL], 0.0);
	assert_near(mean[0], 0.5);
	assert_near(mean[5], 0.6);
	t.n = 1;
	assert_int_equal(rank_calibrate(&t, &layout8, 100, 1, s, mean, &e), ERR_FORMAT);
}

/* key=value and size filters; unknown values never match an active filter. */
static void test_rank_filters(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	table4(&t);
	rank_query_init(&q, origin, 4);

	struct rank_filter skin = { "material", "skin" };
	q.filters = &skin;
	q.n_filters = 1;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 30, 10 }, 2);
	assert_int_equal(r.n_filtered, 2);

	struct rank_filter two[2] = { { "material", "skin" }, { "author", "ana" } };
	q.filters = two;
	q.n_filters = 2;
	run(&t, &q, h, &r); /* C has no author */
	assert_ids(h, &r, (const int64_t[]){ 10 }, 1);

	struct rank_filter none = { "colourway", "red" };
	q.filters = &none;
	q.n_filters = 1;
	run(&t, &q, h, &r);
	assert_int_equal(r.n_hits, 0);

	/* size 20..40 mm inclusive: B (40) and D (25); C's size is unknown */
	q.n_filters = 0;
	q.size_min_mm = 20;
	q.size_max_mm = 40;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 20, 40 }, 2);
	q.size_min_mm = NAN; /* open below */
	q.size_max_mm = 25;
	run(&t, &q, h, &r);
	assert_ids(h, &r, (const int64_t[]){ 10, 40 }, 2);

	/* an archive without sizes matches no size filter */
	t.size_mm = NULL;
	run(&t, &q, h, &r);
	assert_int_equal(r.n_hits, 0);
}

/* Re-ranking given candidates: padding, filters, unknown ids. */
static void test_rank_candidates(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	struct err e;
	table4(&t);
	rank_query_init(&q, origin, 2);
	const int64_t cand[5] = { 40, 10, 20, -1, 30 }; /* 30 is past the padding */
	err_init(&e);
	assert_int_equal(rank_candidates(&t, &layout8, &q, cand, 5, h, &r, &e), 0);
	assert_ids(h, &r, (const int64_t[]){ 10, 20 }, 2);
	assert_int_equal(r.n_candidates, 3);
	assert_near(h[1].dist, 1.44);
	assert_near(h[1].part[COLOUR], 1.44);

	struct rank_filter skin = { "material", "skin" };
	q.filters = &skin;
	q.n_filters = 1;
	assert_int_equal(rank_candidates(&t, &layout8, &q, cand, 5, h, &r, &e), 0);
	assert_ids(h, &r, (const int64_t[]){ 10 }, 1); /* fewer than k: caller's call */
	assert_int_equal(r.n_filtered, 2);

	const int64_t stale[2] = { 10, 99 };
	assert_int_equal(rank_candidates(&t, &layout8, &q, stale, 2, h, &r, &e), ERR_CORRUPT);
	assert_string_equal(e.msg, "index id 99 is not in the archive");
}

static void test_rank_rejects_bad_queries(void **state)
{
	(void)state;
	struct ref_table t;
	struct rank_query q;
	struct rank_hit h[4];
	struct rank_result r;
	struct err e;
	table4(&t);
	rank_query_init(&q, origin, 4);
	float w[5] = { 1, -1, 1, 1, 1 };
	q.weights = w;
	err_init(&e);
	assert_int_equal(rank_search(&t, &layout8, NULL, &q, h, &r, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "weight of block 'local' is -1, not a finite value >= 0");
	w[1] = NAN;
	assert_int_equal(rank_search(&t, &layout8, NULL, &q, h, &r, &e), ERR_FORMAT);
	q.weights = NULL;
	q.k = 0;
	assert_int_equal(rank_search(&t, &layout8, NULL, &q, h, &r, &e), ERR_LIMIT);
	q.k = 4;
	float qv[8] = { 0, 0, 0, INFINITY, 0, 0, 0, 0 };
	q.vec = qv;
	assert_int_equal(rank_search(&t, &layout8, NULL, &q, h, &r, &e), ERR_FORMAT);
	assert_string_equal(e.msg, "query component 3 is not finite");
}

/* ------------------------------------------------------------------ */
/* Larger generated table: the ANN path against the exact scan.         */

#define GN 6000
#define GD 32
static const struct rank_block gblocks[] = {
	{ "shape", 0, 8 }, { "local", 8, 8 }, { "relief", 16, 6 },
	{ "colour", 22, 8 }, { "size", 30, 2 },
};
static const struct rank_layout glayout = { 2, GD, 5, gblocks, 0, NULL, 0, NULL };
/* the same blocks as cues, local split in two like refscan's */
static const struct rank_cue gcues[] = {
	{ "shape", 0, 0, 8, 0 }, { "local-fine", 1, 8, 4, 0 }, { "local-coarse", 1, 12, 4, 0 },
	{ "relief", 2, 16, 6, 0 }, { "colour", 3, 22, 8, 0 }, { "size", 4, 30, 2, 0 },
};
static const struct rank_layout grobust = { 2, GD, 5, gblocks, 6, gcues, 0, NULL };

struct gen {
	float *vecs;
	int64_t *ids;
	float *size;
	char (*material)[8];
	double scale[5];
	float mean[GD];
	struct ref_table t;
	struct knn index;
};

static const char *gen_meta(void *ctx, size_t row, const char *key)
{
	struct gen *g = ctx;
	return strcmp(key, "material") ? NULL : g->material[row];
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

/* Clustered non-negative rows; 1 in 1000 is "bark", the rest "skin". */
static int gen_setup(void **state)
{
	struct gen *g = calloc(1, sizeof(*g));
	if (!g)
		return -1;
	g->vecs = malloc((GN + 50) * GD * sizeof(float));
	g->ids = malloc(GN * sizeof(int64_t));
	g->size = malloc(GN * sizeof(float));
	g->material = malloc(GN * sizeof(*g->material));
	float centres[60 * GD];
	uint64_t s = 42;
	for (size_t i = 0; i < 60 * GD; i++)
		centres[i] = unif(&s);
	for (size_t r = 0; r < GN + 50; r++) {
		size_t c = (size_t)(rng(&s) % 60);
		for (size_t j = 0; j < GD; j++) {
			float x = centres[c * GD + j] + 0.3f * (unif(&s) - 0.5f);
			g->vecs[r * GD + j] = x < 0 ? 0 : x;
		}
		if (r < GN) {
			g->ids[r] = (int64_t)r * 3 + 1;
			g->size[r] = 1.0f + 99.0f * unif(&s);
			snprintf(g->material[r], sizeof(g->material[r]), "%s",
				 r % 1000 == 7 ? "bark" : "skin");
		}
	}
	struct ref_table *t = &g->t;
	t->n = GN;
	t->dim = GD;
	t->ids = g->ids;
	t->vecs = g->vecs;
	t->size_mm = g->size;
	t->meta = gen_meta;
	t->ctx = g;
	struct err e;
	err_init(&e);
	if (rank_layout_check(&glayout, &e) || rank_table_check(t, &glayout, &e) ||
	    rank_calibrate(t, &glayout, 0, 5, g->scale, g->mean, &e))
		return -1;
	t->block_scale = g->scale;
	t->block_mean = g->mean;
	struct knn_opts o;
	knn_opts_init(&o);
	o.kind = KNN_IVF;
	o.nlist = 32;
	if (knn_build(&g->index, GD, GN, g->vecs, g->ids, &o, &e))
		return -1;
	*state = g;
	return 0;
}

static int gen_teardown(void **state)
{
	struct gen *g = *state;
	knn_release(&g->index);
	free(g->material);
	free(g->size);
	free(g->ids);
	free(g->vecs);
	free(g);
	return 0;
}

/* Overlap of two hit lists (ids), in [0, 1]. */
static double overlap(const struct rank_hit *a, const struct rank_hit *b, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			m += a[i].id == b[j].id;
	return (double)m / (double)n;
}

/* ANN + exact re-rank finds what the exact scan finds, weighted or not. */
static void test_rank_ann_path_matches_exact_scan(void **state)
{
	struct gen *g = *state;
	struct rank_hit ha[10], he[10];
	struct rank_result ra, re;
	struct err e;
	err_init(&e);
	double sum_plain = 0, sum_nocol = 0, sum_w = 0;
	const size_t nq = 50;
	float w[5] = { 3, 1, 0.5f, 1, 1 };
	for (size_t j = 0; j < nq; j++) {
		const float *qv = g->vecs + (GN + j) * GD; /* not in the table */
		struct rank_query q;
		rank_query_init(&q, qv, 10);
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, ha, &ra, &e), 0);
		assert_int_equal(ra.exact, 0);
		assert_int_equal(ra.n_fetched, 10); /* unweighted: ANN order is final */
		q.flags = RANK_EXACT;
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, he, &re, &e), 0);
		assert_int_equal(re.exact, 1);
		sum_plain += overlap(ha, he, 10);

		q.flags = RANK_NO_COLOUR;
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, ha, &ra, &e), 0);
		assert_int_equal(ra.n_fetched, 200);
		q.flags = RANK_NO_COLOUR | RANK_EXACT;
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, he, &re, &e), 0);
		sum_nocol += overlap(ha, he, 10);

		q.flags = 0;
		q.weights = w;
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, ha, &ra, &e), 0);
		q.flags = RANK_EXACT;
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, he, &re, &e), 0);
		sum_w += overlap(ha, he, 10);
		/* same hits give the same distances and scores on both paths */
		for (size_t i = 0; i < 10; i++)
			for (size_t k = 0; k < 10; k++)
				if (ha[i].id == he[k].id) {
					assert_true(ha[i].dist == he[k].dist);
					assert_true(ha[i].score == he[k].score);
				}
	}
	assert_true(sum_plain / (double)nq >= 0.99);
	assert_true(sum_nocol / (double)nq >= 0.98);
	assert_true(sum_w / (double)nq >= 0.98);
}

/*
 * The robust order on the ANN path: candidates from the index, ranked
 * by match; against the exact robust scan over all 6000 rows.  A hit
 * found on both paths has the same match and score (the medians come
 * from the table, not from the candidates).
 */
static void test_rank_robust_ann_path_matches_exact_scan(void **state)
{
	struct gen *g = *state;
	struct rank_hit ha[10], he[10];
	struct rank_result ra, re;
	struct err e;
	err_init(&e);
	double sum = 0;
	const size_t nq = 50;
	for (size_t j = 0; j < nq; j++) {
		const float *qv = g->vecs + (GN + j) * GD;
		struct rank_query q;
		rank_query_init(&q, qv, 10);
		assert_int_equal(rank_search(&g->t, &grobust, &g->index, &q, ha, &ra, &e), 0);
		assert_int_equal(ra.exact, 0);
		assert_int_equal(ra.n_fetched, 200); /* more than k: the index orders by distance */
		assert_int_equal(ra.n_cues, 6);
		q.flags = RANK_EXACT;
		assert_int_equal(rank_search(&g->t, &grobust, &g->index, &q, he, &re, &e), 0);
		assert_int_equal(re.exact, 1);
		for (size_t i = 1; i < 10; i++)
			assert_true(he[i - 1].match <= he[i].match);
		sum += overlap(ha, he, 10);
		for (size_t i = 0; i < 10; i++)
			for (size_t k = 0; k < 10; k++)
				if (ha[i].id == he[k].id) {
					assert_true(ha[i].match == he[k].match);
					assert_true(ha[i].score == he[k].score);
				}
	}
	assert_true(sum / (double)nq >= 0.95);
}

/* The ANN rows of a robust query: itself, then each weighted block at the mean. */
static void test_rank_ann_rows_and_merge(void **state)
{
	struct gen *g = *state;
	const float *qv = g->vecs + GN * GD;
	float rows[RANK_MAX_ANN_ROWS * GD];
	float w[5] = { 1, 1, 1, 0, 1 }; /* colour dropped */
	assert_int_equal(rank_ann_rows(&g->t, &glayout, w, qv, rows), 1);
	assert_int_equal(rank_ann_rows(&g->t, &grobust, w, qv, rows), 5);
	/* row 0: the query with colour (22..29) at the mean */
	for (size_t c = 0; c < GD; c++)
		assert_true(rows[c] == (c >= 22 && c < 30 ? g->mean[c] : qv[c]));
	/* rows 1..4: shape, local, relief, size also at the mean, one each */
	const size_t lo[4] = { 0, 8, 16, 30 }, hi[4] = { 8, 16, 22, 32 };
	for (size_t r = 1; r < 5; r++)
		for (size_t c = 0; c < GD; c++) {
			bool mean = (c >= 22 && c < 30) || (c >= lo[r - 1] && c < hi[r - 1]);
			assert_true(rows[r * GD + c] == (mean ? g->mean[c] : qv[c]));
		}
	/* one weighted block: nothing to leave out */
	float w1[5] = { 1, 0, 0, 0, 0 };
	assert_int_equal(rank_ann_rows(&g->t, &grobust, w1, qv, rows), 1);

	int64_t ids[10] = { 7, -1, 3, 7, 12, 3, -1, 5, 12, 12 };
	assert_int_equal(rank_merge_ids(ids, 10), 4);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 5);
	assert_int_equal(ids[2], 7);
	assert_int_equal(ids[3], 12);
}

/* A batched knn_search() re-ranked row by row equals rank_search(). */
static void test_rank_batched_candidates_match_search(void **state)
{
	struct gen *g = *state;
	const size_t nq = 20, kk = 10;
	float dist[20 * 10];
	int64_t ids[20 * 10];
	struct err e;
	err_init(&e);
	const float *qs = g->vecs + GN * GD;
	assert_int_equal(knn_search(&g->index, nq, qs, kk, dist, ids, &e), 0);
	for (size_t j = 0; j < nq; j++) {
		struct rank_query q;
		struct rank_hit ha[10], hb[10];
		struct rank_result ra, rb;
		rank_query_init(&q, qs + j * GD, kk);
		assert_int_equal(rank_candidates(&g->t, &glayout, &q, ids + j * kk, kk, ha, &ra, &e), 0);
		assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, hb, &rb, &e), 0);
		assert_int_equal(ra.n_hits, kk);
		for (size_t i = 0; i < kk; i++) {
			assert_int_equal(ha[i].id, hb[i].id);
			assert_true(ha[i].score == hb[i].score);
		}
	}
}

/* A filter too selective for the ANN candidates falls back to the scan. */
static void test_rank_selective_filter_falls_back_to_scan(void **state)
{
	struct gen *g = *state;
	struct rank_hit h[10];
	struct rank_result r;
	struct err e;
	err_init(&e);
	struct rank_query q;
	rank_query_init(&q, g->vecs + GN * GD, 10);
	struct rank_filter bark = { "material", "bark" };
	q.filters = &bark;
	q.n_filters = 1;
	assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, h, &r, &e), 0);
	assert_int_equal(r.exact, 1);
	assert_int_equal(r.n_hits, 6); /* rows 7, 1007, ..., 5007 */
	assert_int_equal(r.n_candidates, 6);
	assert_int_equal(r.n_filtered, GN - 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(h[i].row % 1000, 7);
		if (i)
			assert_true(h[i].dist >= h[i - 1].dist);
	}
	/* a loose filter stays on the ANN path */
	q.size_min_mm = 10;
	q.n_filters = 0;
	assert_int_equal(rank_search(&g->t, &glayout, &g->index, &q, h, &r, &e), 0);
	assert_int_equal(r.exact, 0);
	assert_int_equal(r.n_hits, 10);
	for (size_t i = 0; i < 10; i++)
		assert_true(g->size[h[i].row] >= 10);
}

/* Same hits for 1 and 2 threads on the exact scan. */
static void test_rank_scan_thread_independent(void **state)
{
	(void)state;
	/* 160000 x 32 components: above the size where the scan goes parallel */
	const size_t n = 160000;
	float *v = malloc(n * GD * sizeof(float));
	int64_t *ids = malloc(n * sizeof(int64_t));
	assert_non_null(v);
	assert_non_null(ids);
	uint64_t s = 77;
	for (size_t i = 0; i < n * GD; i++)
		v[i] = unif(&s);
	for (size_t r = 0; r < n; r++)
		ids[r] = (int64_t)r;
	/* exact duplicates across the thread split: ties resolved by id */
	memcpy(v + (n - 1) * GD, v + 5 * GD, GD * sizeof(float));
	struct ref_table t;
	memset(&t, 0, sizeof(t));
	t.n = n;
	t.dim = GD;
	t.ids = ids;
	t.vecs = v;
	struct rank_hit h1[50], h2[50];
	struct rank_result r1, r2;
	struct err e;
	err_init(&e);
	struct rank_query q;
	rank_query_init(&q, v + 5 * GD, 50);
	int saved = omp_get_max_threads();
	omp_set_num_threads(1);
	assert_int_equal(rank_search(&t, &glayout, NULL, &q, h1, &r1, &e), 0);
	omp_set_num_threads(2);
	assert_int_equal(rank_search(&t, &glayout, NULL, &q, h2, &r2, &e), 0);
	/* the robust order is thread-independent too */
	struct rank_hit h3[50], h4[50];
	struct rank_result r3, r4;
	omp_set_num_threads(1);
	assert_int_equal(rank_search(&t, &grobust, NULL, &q, h3, &r3, &e), 0);
	omp_set_num_threads(2);
	assert_int_equal(rank_search(&t, &grobust, NULL, &q, h4, &r4, &e), 0);
	omp_set_num_threads(saved);
	assert_int_equal(h3[0].id, 5);
	assert_int_equal(h3[1].id, (int64_t)(n - 1));
	for (size_t i = 0; i < 50; i++) {
		assert_int_equal(h3[i].id, h4[i].id);
		assert_true(h3[i].match == h4[i].match);
	}
	assert_int_equal(h1[0].id, 5);
	assert_int_equal(h1[1].id, (int64_t)(n - 1));
	assert_int_equal(r1.n_hits, 50);
	for (size_t i = 0; i < 50; i++) {
		assert_int_equal(h1[i].id, h2[i].id);
		assert_true(h1[i].dist == h2[i].dist);
	}
	free(ids);
	free(v);
}

/* An index holding an id the table lacks is reported, not trusted. */
static void test_rank_stale_index_is_corrupt(void **state)
{
	struct gen *g = *state;
	struct ref_table t = g->t;
	t.n = GN / 2; /* the index still has the second half */
	struct rank_hit h[10];
	struct rank_result r;
	struct err e;
	err_init(&e);
	struct rank_query q;
	/* a query from the second half's region finds its ids first */
	rank_query_init(&q, g->vecs + (GN - 1) * GD, 10);
	assert_int_equal(rank_search(&t, &glayout, &g->index, &q, h, &r, &e), ERR_CORRUPT);
	assert_non_null(strstr(e.msg, "is not in the archive"));
}

/* Every allocation failure in a filtered ANN query is a clean ERR_NOMEM. */
static void test_rank_survives_allocation_failures(void **state)
{
	struct gen *g = *state;
	struct rank_query q;
	rank_query_init(&q, g->vecs + (GN + 1) * GD, 10);
	struct rank_filter bark = { "material", "bark" };
	q.filters = &bark;
	q.n_filters = 1;
	/* the plain and the robust order */
	const struct rank_layout *layouts[2] = { &glayout, &grobust };
	for (int li = 0; li < 2; li++) {
		int ok = 0;
		for (long fail = 0; fail < 100 && !ok; fail++) {
			struct rank_hit h[10];
			struct rank_result r;
			struct err e;
			err_init(&e);
			alloc_fail_after(fail);
			int rc = rank_search(&g->t, layouts[li], &g->index, &q, h, &r, &e);
			alloc_fail_after(-1);
			if (rc == 0) {
				ok = 1;
				assert_int_equal(r.n_hits, 6);
			} else {
				assert_int_equal(rc, ERR_NOMEM);
			}
		}
		assert_true(ok);
	}
}

int main(void)
{
	const struct CMUnitTest small[] = {
		cmocka_unit_test(test_rank_layout_and_table_checks),
		cmocka_unit_test(test_rank_robust_order_by_hand),
		cmocka_unit_test(test_rank_views_by_hand),
		cmocka_unit_test(test_rank_robust_skips_constant_cue),
		cmocka_unit_test(test_rank_robust_layout_checks),
		cmocka_unit_test(test_rank_noise_leaves_fine_cues_out),
		cmocka_unit_test(test_rank_weights_change_order),
		cmocka_unit_test(test_rank_no_colour_drops_colour_block),
		cmocka_unit_test(test_rank_explain_parts_sum_to_distance),
		cmocka_unit_test(test_rank_score_monotonic),
		cmocka_unit_test(test_rank_calibrate_by_hand),
		cmocka_unit_test(test_rank_filters),
		cmocka_unit_test(test_rank_candidates),
		cmocka_unit_test(test_rank_rejects_bad_queries),
	};
	const struct CMUnitTest generated[] = {
		cmocka_unit_test(test_rank_ann_path_matches_exact_scan),
		cmocka_unit_test(test_rank_batched_candidates_match_search),
		cmocka_unit_test(test_rank_robust_ann_path_matches_exact_scan),
		cmocka_unit_test(test_rank_ann_rows_and_merge),
		cmocka_unit_test(test_rank_selective_filter_falls_back_to_scan),
		cmocka_unit_test(test_rank_scan_thread_independent),
		cmocka_unit_test(test_rank_stale_index_is_corrupt),
		cmocka_unit_test(test_rank_survives_allocation_failures),
	};
	int failed = cmocka_run_group_tests_name("rank", small, NULL, NULL);
	failed += cmocka_run_group_tests_name("rank_generated", generated, gen_setup, gen_teardown);
	return failed ? 1 : 0;
}
