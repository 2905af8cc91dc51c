/*
 * rank.h - exact re-ranking of references against a query descriptor.
 *
 * A descriptor is a fixed-length float vector made of named blocks
 * (shape, local, relief, colour, size), laid out by a struct rank_layout.
 * The stored vectors already carry the index's block weights, so plain
 * squared L2 is the index's ranking.  A query may re-weight blocks: its
 * weights are multipliers on the stored weighting (1 = as indexed), and
 * the distance is
 *
 *     dist = sum over blocks b of  w_b * || q_b - r_b ||^2
 *
 * with part_b = w_b * ||q_b - r_b||^2 reported per block (--explain; the
 * parts sum to dist).  A query without colour (RANK_NO_COLOUR) sets the
 * weight of the block named "colour" to 0.
 *
 * Score: 100 * exp(-RANK_SCORE_K * dist / S), where S = sum_b w_b * s_b
 * and s_b is the mean squared distance of block b between random pairs of
 * references (rank_calibrate(), done by the archive at index time).  S is
 * the expected distance of an unrelated pair under the same weights, so
 * scores mean the same whatever the weights: 100 is identical, 50 is
 * 23% of an unrelated pair's distance, an unrelated pair scores about 5.
 * The score falls strictly as the distance grows.
 *
 * Paths (rank_search): the exact scan over every reference (filters
 * first, then weighted distances; OpenMP) when there is no ANN index,
 * the index is exact, or RANK_EXACT is given.  Otherwise the ANN index is
 * asked for more candidates than wanted (rank_fetch()), they are filtered
 * and re-ranked exactly (in the ANN query a block of weight 0 takes the
 * table's mean block, when it has one, so the index ranks by the blocks
 * that count); if filters leave fewer than k, the fetch doubles
 * up to RANK_FETCH_MAX and then falls back to the exact scan, so a filter
 * never silently shortens a result list.
 *
 * Robust order (a layout with cues): a perturbed copy of a scan keeps
 * some of its descriptor and loses the rest (a crop changes the global
 * shape but not the local geometry; noise or decimation change the relief
 * but not the form), and a sum over every block lets the lost part decide.
 * So when the layout lists cues (parts of blocks compared on their own),
 * each cue's distance is put on the archive's scale,
 *
 *     x_c = sqrt(w_b) * || q_c - r_c || / sqrt(median over references of || q_c - r_c ||^2)
 *
 * (the median over an even sample of at most RANK_FUSE_SAMPLE rows; a cue
 * whose weight is 0, or whose median is 0 because it does not vary, is
 * left out), and the match is the mean of the x_c, the smaller half of
 * them (at least one; rank_query.keep sets another share, 1 = every cue)
 * weighing 1 and the others RANK_FUSE_TAIL, each of those counted at
 * most RANK_FUSE_CAP (far is far): the references that agree
 * with the query on most of what it has come first, whatever the rest
 * says, and the rest only orders references that agree equally.  Results are ordered
 * by that match value m (hit.match) and scored 100 * exp(-RANK_FUSE_K * m):
 * 100 is identical, a reference at the archive's median distance on
 * every kept cue scores about 5.  dist and part stay the weighted squared
 * distance and its blocks, for --explain.
 */
#ifndef REFSCAN_RANK_H
#define REFSCAN_RANK_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct knn;

#define RANK_MAX_BLOCKS 16
#define RANK_MAX_K 10000u
/* 100 * exp(-K * dist / S): an unrelated pair (dist = S) scores ~5. */
#define RANK_SCORE_K 3.0
/* Name of the block a colourless query drops. */
#define RANK_COLOUR_BLOCK "colour"
/* ANN candidates fetched at most before falling back to the exact scan. */
#define RANK_FETCH_MAX 20000u
/* Random pairs rank_calibrate() averages over by default. */
#define RANK_CALIBRATION_PAIRS 4096u
/* Cues of a robust layout at most; rows the cue medians are taken over. */
#define RANK_MAX_CUES 32 /* kept cues are bits of a uint32_t */
#define RANK_FUSE_SAMPLE 1024u
/* ANN query rows per query at most: itself, then one per block left out. */
#define RANK_MAX_ANN_ROWS (RANK_MAX_BLOCKS + 1)
/*
 * Views: a reference may carry, after its own vector, the vectors of
 * views of it (what one scanner position sees).  A query is matched
 * against each and the reference takes its best, a view's match (or
 * distance) counting (1 + RANK_VIEW_PENALTY) times: a reference has
 * several chances where others have one only if they have views too,
 * and a view must be clearly closer than the whole to decide.  Medians,
 * calibration and the index use the references' own vectors.
 */
#define RANK_VIEW_PENALTY 0.3
/* Share of the cues the robust match keeps by default (at least one). */
#define RANK_FUSE_KEEP 0.5
/* Weight of each cue left out of the kept share: breaks ties, bounded. */
#define RANK_FUSE_TAIL 0.05
/* ...and the most such a cue counts for (x in units of the median). */
#define RANK_FUSE_CAP 2.0
/* Robust score 100 * exp(-K * m): m = 1 (median on every kept cue) ~5. */
#define RANK_FUSE_K 3.0
/*
 * Noise (a layout that carries a noise level, rank_layout.carried > 0):
 * a cue marked fine is fitted over a small radius, which vertex noise can
 * disturb as much as the detail it would compare; the level is the
 * noise over that radius.  Two vectors whose levels (each at least
 * RANK_NOISE_FLOOR: less than a hundredth of the radius is no noise to
 * the fit) differ more than RANK_NOISE_RATIO times are of unlike noise:
 * one side's fine cue may measure its noise: unless the noisier level
 * is within what the cleaner vector's fine cues tolerate
 * (rank_layout.fine_tolerance: a surface curved enough at that radius
 * still shows through), their robust match leaves the fine cues out and
 * keeps its share of the cues left.  A pair of alike noise compares them.
 * rank_result.unlike says how much of the archive is unlike the query.
 */
#define RANK_NOISE_RATIO 4.0
#define RANK_NOISE_FLOOR 0.01

struct rank_block {
	const char *name; /* "shape", "local", "relief", "colour", "size" */
	size_t offset;    /* first component */
	size_t len;       /* components */
};

/* A part of one block compared on its own in the robust order. */
struct rank_cue {
	const char *name; /* for --explain, e.g. "local-fine" (may be NULL) */
	size_t block;  /* the block it belongs to (its weight applies) */
	size_t offset; /* first component, inside the block */
	size_t len;    /* components, inside the block */
	int fine;      /* left out of a pair of unlike noise (see Noise above) */
};

/*
 * Blocks tile [0, dim - carried) in order, without gaps or overlap; the
 * carried components after them are never compared (weighted distances
 * and ANN query rows take them as 0: the ANN index must hold 0 there).
 * With carried > 0 the first carried component is the vector's noise
 * level (see Noise above).  Cues (may be none: plain weighted distance
 * order) lie inside their blocks.
 */
struct rank_layout {
	uint32_t schema_id; /* descriptor schema the layout belongs to */
	size_t dim;         /* components per vector */
	size_t n_blocks;
	const struct rank_block *blocks;
	size_t n_cues;      /* 0: order by dist */
	const struct rank_cue *cues;
	size_t carried;     /* components after the blocks (0: none) */
	/*
	 * The noise level the fine cues of a vector tolerate (see Noise),
	 * or NULL: every pair of unlike levels leaves them out.  Called
	 * once per query for the query's vector, and for a reference's
	 * only in a pair of unlike levels where the query is the noisier.
	 */
	double (*fine_tolerance)(const float *vec);
};

/*
 * The references a query runs against, as the archive exposes them.
 * Everything is borrowed; rank never frees or changes it.
 */
struct ref_table {
	size_t n;              /* references */
	size_t dim;            /* must equal the layout's */
	size_t views;          /* vectors of views per reference, after its own */
	const int64_t *ids;    /* n ids, strictly ascending */
	const float *vecs;     /* n * (1 + views) * dim stored descriptors: a
				  reference's own vector, then its views' */
	const float *size_mm;  /* n largest extents in mm (NAN unknown), or NULL */
	const double *block_scale; /* n_blocks calibration (rank_calibrate), or NULL */
	const float *block_mean;   /* dim: mean descriptor (rank_calibrate), or NULL */
	/*
	 * Value of metadata key for a row, or NULL when absent.  Called from
	 * one thread at a time; the string must live until the next call.
	 * NULL when the archive has no metadata (key filters then match
	 * nothing).
	 */
	const char *(*meta)(void *ctx, size_t row, const char *key);
	void *ctx;
};

struct rank_filter {
	const char *key;   /* metadata key */
	const char *value; /* exact, case-sensitive value */
};

enum rank_flags {
	RANK_NO_COLOUR = 1 << 0, /* the query has no colour: drop that block */
	RANK_EXACT = 1 << 1      /* scan every reference even with an index */
};

struct rank_query {
	const float *vec;      /* dim components (layout of the table) */
	const float *weights;  /* n_blocks multipliers >= 0, NULL = all 1 */
	size_t k;              /* hits wanted, 1..RANK_MAX_K */
	unsigned flags;        /* enum rank_flags */
	const struct rank_filter *filters; /* all must match */
	size_t n_filters;
	double size_min_mm;    /* inclusive; NAN = no lower bound */
	double size_max_mm;    /* inclusive; NAN = no upper bound */
	double keep;           /* robust order: share of the cues kept, (0, 1];
				  0 = RANK_FUSE_KEEP */
};

struct rank_hit {
	int64_t id;
	size_t row;                   /* row in the ref_table */
	uint32_t view;                /* vector that matched: 0 the whole scan,
					 v > 0 its view v (RANK_VIEW_PENALTY applied) */
	float dist;                   /* weighted squared distance */
	float match;                  /* what orders hits: dist, or the robust match */
	uint32_t kept;                /* robust order: bit c for each layout cue c in
					 the kept share (what the match rests on) */
	float score;                  /* 0..100, see the top of this file */
	float part[RANK_MAX_BLOCKS];  /* per block w_b * ||q_b - r_b||^2 */
};

struct rank_result {
	size_t n_hits;       /* hits written, <= k (fewer only if fewer match) */
	size_t n_candidates; /* references whose distance was computed */
	size_t n_filtered;   /* candidates rejected by filters */
	size_t n_fetched;    /* ANN candidates asked for, 0 on the exact path */
	int exact;           /* 1 when the exact scan produced the hits */
	double scale;        /* S used for the score */
	size_t n_cues;       /* cues the robust order used (0: ordered by dist) */
	double unlike;       /* share of the sampled references whose noise is
				unlike the query's: their fine cues were left
				out (Noise above); 0 when no cue is fine */
};

/* Set q to: no weights (all 1), k hits, no flags, no filters, open range. */
void rank_query_init(struct rank_query *q, const float *vec, size_t k);

/*
 * Check a layout (blocks tile [0, dim), at most RANK_MAX_BLOCKS, names
 * set and distinct).  Returns 0 or ERR_FORMAT naming the block.
 */
int rank_layout_check(const struct rank_layout *l, struct err *e);

/*
 * Check a table against a layout: same dim, ids strictly ascending,
 * vectors present.  O(n); the archive calls it once when it opens.
 * Returns 0 or ERR_FORMAT naming the row.
 */
int rank_table_check(const struct ref_table *t, const struct rank_layout *l,
		     struct err *e);

/*
 * Effective block weights of a query: q->weights (or 1), with the colour
 * block at 0 under RANK_NO_COLOUR.  OUT: w[l->n_blocks].  Returns 0 or
 * ERR_FORMAT (negative or non-finite weight, or every weight 0).
 */
int rank_weights(const struct rank_layout *l, const struct rank_query *q,
		 float *w, struct err *e);

/*
 * Weighted squared distance between a and b (l->dim each) under block
 * weights w.  OUT: part[l->n_blocks] per-block terms if part is not NULL.
 */
float rank_distance(const struct rank_layout *l, const float *w,
		    const float *a, const float *b, float *part);

/* S = sum_b w_b * block_scale[b]; the score's unit of distance. */
double rank_scale(const struct rank_layout *l, const float *w,
		  const double *block_scale);

/* 100 * exp(-RANK_SCORE_K * dist / scale) in [0, 100]; 0 if scale <= 0. */
float rank_score(float dist, double scale);

/*
 * Calibrate on a table: OUT scale[l->n_blocks], the mean squared distance
 * of each block over n_pairs seeded random pairs of distinct rows (0 =
 * RANK_CALIBRATION_PAIRS), and mean[dim] (may be NULL), the mean vector.
 * Deterministic for a seed.  Returns 0, or ERR_FORMAT when n < 2.
 */
int rank_calibrate(const struct ref_table *t, const struct rank_layout *l,
		   size_t n_pairs, uint64_t seed, double *scale, float *mean,
		   struct err *e);

/*
 * The rows an ANN search runs for query vector qv under block weights w
 * (rank_weights): row 0 is qv with each block of weight 0 set to the
 * table's mean block.  For a robust layout (cues) with a mean and at
 * least two weighted blocks, one more row per weighted block, with that
 * block also at the mean: the references a perturbation moved far on one
 * block (a crop on the shape) are still among some row's candidates.
 * OUT rows: RANK_MAX_ANN_ROWS * l->dim floats.  Returns the row count.
 */
size_t rank_ann_rows(const struct ref_table *t, const struct rank_layout *l,
		     const float *w, const float *qv, float *rows);

/*
 * Candidate ids of several ANN rows as one list: sorted ascending, each
 * once, FAISS's -1 padding dropped, in place.  Returns the count.
 */
size_t rank_merge_ids(int64_t *ids, size_t n);

/* 1 when row passes the query's metadata and size filters. */
int rank_match(const struct ref_table *t, size_t row,
	       const struct rank_query *q);

/*
 * ANN candidates fetched for k hits: k when the query uses the index's
 * own weighting and no filters (the ANN order is then the exact order),
 * else max(10 k, 200); capped at RANK_FETCH_MAX.
 */
size_t rank_fetch(size_t k, int reweighted, int filtered);

/*
 * Rank the table's references for one query (paths at the top of this
 * file).  index may be NULL; when given it must hold exactly the table's
 * ids (a candidate id missing from the table is ERR_CORRUPT).
 * OUT: hits[0..res->n_hits) best first, ties by ascending id, with parts
 * and scores; res.  Table and layout must have passed their checks.
 * Thread-safe if the table's meta callback may be called concurrently
 * from different rank_search() calls.  Returns 0, ERR_FORMAT (weights,
 * dimension), ERR_LIMIT (k), ERR_NOMEM, ERR_FAISS, ERR_CORRUPT.
 */
int rank_search(const struct ref_table *t, const struct rank_layout *l,
		const struct knn *index, const struct rank_query *q,
		struct rank_hit *hits, struct rank_result *res, struct err *e);

/*
 * Re-rank given candidate ids (e.g. one row of a batched knn_search(),
 * -1 padding allowed) for one query: filters, exact weighted distances,
 * the best q->k with parts and scores, exactly as rank_search() does on
 * its ANN path, but without fetching more or falling back to a scan:
 * res->n_hits < q->k tells the caller to fetch more or call
 * rank_search().  Ids must be in the table (else ERR_CORRUPT).  Returns
 * as rank_search().
 */
int rank_candidates(const struct ref_table *t, const struct rank_layout *l,
		    const struct rank_query *q, const int64_t *cand,
		    size_t n_cand, struct rank_hit *hits,
		    struct rank_result *res, struct err *e);

#endif
