/*
 * describe.c - the descriptor of a scan: block layout, weights, and the
 * pipeline that fills them (see describe.h and docs/descriptors.md).
 *
 * Pipeline: prepare (desc_sample.c) -> 8192 area-uniform centres ->
 * global shape (desc_shape.c) -> local fits at 2 + 3 (+ 3 mm) radii
 * (desc_fit.c) -> histograms and statistics (desc_relief.c,
 * desc_colour.c) -> size -> per-block weights.  Every block leaves its
 * builder with squared norm at most 1 (histograms have exactly 1) and is
 * then multiplied by sqrt(weight).
 */
#include "describe.h"
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"
#include "../formats/scan.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "../common/banned.h"

const double desc_relief_l[DESC_RELIEF_SCALES] = { 0.03, 0.09, 0.27 };
const double desc_relief_s[DESC_RELIEF_SCALES] = { 0.01, 0.03, 0.09 };
const double desc_relief_l_mm[DESC_RELIEF_SCALES] = { 0.5, 2.0, 8.0 };
const double desc_relief_s_mm[DESC_RELIEF_SCALES] = { 0.125, 0.5, 2.0 };
const double desc_local_radii[DESC_LOCAL_SCALES] = { 0.09, 0.27 };

#define OFF_SHAPE 0
#define OFF_LOCAL (OFF_SHAPE + DESC_SHAPE_LEN)
#define OFF_RELIEF (OFF_LOCAL + DESC_LOCAL_LEN)
#define OFF_RELIEF_MM (OFF_RELIEF + DESC_RELIEF_LEN)
#define OFF_COLOUR (OFF_RELIEF_MM + DESC_RELIEF_LEN)
#define OFF_SIZE (OFF_COLOUR + DESC_COLOUR_LEN)
#define OFF_NOISE (OFF_SIZE + DESC_SIZE_LEN)
#define DIM (OFF_NOISE + DESC_CARRIED)

static const struct desc_block blocks[DESC_N_BLOCKS] = {
	{ "shape", OFF_SHAPE, DESC_SHAPE_LEN, 1.0f,
	  "D2/A3/D1 distributions, SH energies of the distance field, PCA ratios" },
	{ "local", OFF_LOCAL, DESC_LOCAL_LEN, 0.75f,
	  "shape index x curvedness at radii 0.09 and 0.27 of the RMS radius, normal pairs" },
	{ "relief", OFF_RELIEF, DESC_RELIEF_LEN, 0.5f,
	  "relief in bands 0.01-0.03, 0.03-0.09, 0.09-0.27 of the RMS radius" },
	{ "relief_mm", OFF_RELIEF_MM, DESC_RELIEF_LEN, 0.5f,
	  "relief in bands 0.125-0.5, 0.5-2, 2-8 mm (units known)" },
	{ "colour", OFF_COLOUR, DESC_COLOUR_LEN, 0.75f,
	  "CIELAB histogram and ring LBP riu2 at two radii (colour present)" },
	{ "size", OFF_SIZE, DESC_SIZE_LEN, 0.05f,
	  "log10 principal extents and sqrt(area) in mm (units known)" },
};

const struct desc_block *describe_blocks(void)
{
	return blocks;
}

/* Each block on its own, the local block's two radii apart (describe.h). */
static const struct desc_cue cues[] = {
	{ "shape", DESC_SHAPE, OFF_SHAPE, DESC_SHAPE_LEN, false },
	{ "local-fine", DESC_LOCAL, OFF_LOCAL, DESC_SI_BINS * DESC_CV_BINS, true },
	{ "local-coarse", DESC_LOCAL, OFF_LOCAL + DESC_SI_BINS * DESC_CV_BINS,
	  DESC_SI_BINS * DESC_CV_BINS, false },
	{ "local-pairs", DESC_LOCAL, OFF_LOCAL + DESC_LOCAL_SCALES * DESC_SI_BINS * DESC_CV_BINS,
	  DESC_PAIR_BINS, false },
	{ "relief", DESC_RELIEF, OFF_RELIEF, DESC_RELIEF_LEN, false },
	{ "relief_mm", DESC_RELIEF_MM, OFF_RELIEF_MM, DESC_RELIEF_LEN, false },
	{ "colour", DESC_COLOUR, OFF_COLOUR, DESC_COLOUR_LEN, false },
	{ "size", DESC_SIZE, OFF_SIZE, DESC_SIZE_LEN, false },
};

const struct desc_cue *describe_cues(size_t *n)
{
	*n = sizeof(cues) / sizeof(cues[0]);
	return cues;
}

size_t describe_noise_offset(void)
{
	return OFF_NOISE;
}

double describe_fine_tolerance(const float *v)
{
	/* column masses of the Hellinger histogram: bin centres log2(C r) = -7 + 1.5 j */
	double m[DESC_CV_BINS] = { 0 }, all = 0;
	const float *h = v + OFF_LOCAL;
	for (int i = 0; i < DESC_SI_BINS; i++)
		for (int j = 0; j < DESC_CV_BINS; j++) {
			double x = (double)h[i * DESC_CV_BINS + j];
			m[j] += x * x;
			all += x * x;
		}
	if (!(all > 0))
		return 0;
	double below = 0, half = 0.5 * all, lc = -7;
	for (int j = 0; j < DESC_CV_BINS; j++) {
		if (below + m[j] >= half) {
			lc = -7 + 1.5 * (j - 1) + (j ? 1.5 * (half - below) / m[j] : 1.5);
			break;
		}
		below += m[j];
	}
	return exp2(lc);
}

size_t describe_dim(void)
{
	return DIM;
}

size_t describe_record_dim(void)
{
	return (1 + DESC_VIEWS) * (size_t)DIM;
}

void describe_default_weights(float *w)
{
	for (int b = 0; b < DESC_N_BLOCKS; b++)
		w[b] = blocks[b].weight;
}

void describe_preset_weights(enum desc_preset p, float *w)
{
	describe_default_weights(w);
	if (p == DESC_PRESET_SURFACE) {
		w[DESC_SHAPE] = 0;
		w[DESC_LOCAL] = 0;
		w[DESC_RELIEF] = 1;
		w[DESC_RELIEF_MM] = 1;
		w[DESC_COLOUR] = 0.5f;
		w[DESC_SIZE] = 0;
	}
}

double describe_preset_keep(enum desc_preset p)
{
	return p == DESC_PRESET_SURFACE ? 1.0 : 0.5;
}

void describe_query_weights(const struct desc_info *q, const float *base, float *w)
{
	for (int b = 0; b < DESC_N_BLOCKS; b++)
		w[b] = base ? base[b] : blocks[b].weight;
	if (!(q->flags & DESC_HAS_COLOUR))
		w[DESC_COLOUR] = 0;
	if (!(q->flags & DESC_HAS_UNITS)) {
		w[DESC_RELIEF_MM] = 0;
		w[DESC_SIZE] = 0;
	}
	if (q->flags & DESC_LOCAL_SPARSE)
		w[DESC_LOCAL] = 0;
}

int describe_block_find(const char *name)
{
	for (int b = 0; b < DESC_N_BLOCKS; b++)
		if (!strcasecmp(name, blocks[b].name))
			return b;
	return -1;
}

void describe_opts_init(struct describe_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
}

float describe_block_distance(const float *a, const float *b, enum desc_block_id id)
{
	const struct desc_block *bl = &blocks[id];
	double s = 0;
	for (size_t i = bl->offset; i < bl->offset + bl->length; i++) {
		double d = (double)a[i] - b[i];
		s += d * d;
	}
	return bl->weight > 0 ? (float)(s / bl->weight) : 0.0f;
}

float describe_distance(const float *a, const float *b, const float *w)
{
	double s = 0;
	for (int id = 0; id < DESC_N_BLOCKS; id++) {
		if (!w) {
			s += describe_block_distance(a, b, (enum desc_block_id)id) * blocks[id].weight;
			continue;
		}
		if (w[id] > 0)
			s += (double)w[id] * describe_block_distance(a, b, (enum desc_block_id)id);
	}
	return (float)s;
}

void describe_reweight(float *v, const float *w)
{
	for (int id = 0; id < DESC_N_BLOCKS; id++) {
		const struct desc_block *bl = &blocks[id];
		double f = bl->weight > 0 && w[id] >= 0 ? sqrt(w[id] / bl->weight) : 0;
		for (size_t i = bl->offset; i < bl->offset + bl->length; i++)
			v[i] = (float)(v[i] * f);
	}
}

/* Multiply each block (built with squared norm <= 1) by sqrt(weight). */
static void apply_weights(float *out)
{
	for (int id = 0; id < DESC_N_BLOCKS; id++) {
		const struct desc_block *bl = &blocks[id];
		float f = (float)sqrt(bl->weight);
		for (size_t i = bl->offset; i < bl->offset + bl->length; i++)
			out[i] *= f;
	}
}

/* Every k-th point of P into out (a stratified subset of stratified samples). */
static int pts_stride(const struct desc_pts *P, size_t k, struct desc_pts *out, struct err *e)
{
	size_t n = (P->n + k - 1) / k;
	if (desc_pts_alloc(out, n, P->lab != NULL) < 0)
		return err_set(e, ERR_NOMEM, "out of memory for %zu points", n);
	if (P->id && !(out->id = alloc_array(n ? n : 1, sizeof(uint32_t)))) {
		desc_pts_release(out);
		return err_set(e, ERR_NOMEM, "out of memory for %zu points", n);
	}
	for (size_t i = 0, j = 0; i < P->n; i += k, j++) {
		memcpy(out->pos + 3 * j, P->pos + 3 * i, 3 * sizeof(float));
		memcpy(out->nrm + 3 * j, P->nrm + 3 * i, 3 * sizeof(float));
		if (P->lab)
			memcpy(out->lab + 3 * j, P->lab + 3 * i, 3 * sizeof(float));
		if (P->id)
			out->id[j] = P->id[i];
	}
	return 0;
}

/* Colour present: on at least half the surface and not one flat colour. */
static void colour_presence(const struct desc_pts *C, struct desc_info *info)
{
	size_t with = 0;
	bool uniform = true;
	const float *first = NULL;
	for (size_t i = 0; C->lab && i < C->n; i++) {
		const float *lab = C->lab + 3 * i;
		if (!isfinite(lab[0]))
			continue;
		with++;
		if (!first)
			first = lab;
		else if (lab[0] != first[0] || lab[1] != first[1] || lab[2] != first[2])
			uniform = false;
	}
	info->colour_fraction = C->n ? (double)with / (double)C->n : 0;
	if (!with)
		return;
	if (uniform) {
		info->flags |= DESC_COLOUR_UNIFORM;
		return;
	}
	if (info->colour_fraction < 0.5)
		return;
	if (info->colour_fraction < 0.999)
		info->flags |= DESC_PARTIAL_COLOUR;
	info->flags |= DESC_HAS_COLOUR;
}

/* Extents along the principal axes over the finite vertices (specks left
 * out), model units. */
static void principal_extents(const struct desc_src *src, double ext[3])
{
	double val[3], vec[3][3];
	desc_eig3(src->cov, val, vec);
	double lo[3] = { INFINITY, INFINITY, INFINITY }, hi[3] = { -INFINITY, -INFINITY, -INFINITY };
	const struct scan *s = src->s;
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i) || (src->speck_v && src->speck_v[i]))
			continue;
		double p[3];
		desc_vertex(src, (uint32_t)i, p);
		for (int a = 0; a < 3; a++) {
			double t = p[0] * vec[a][0] + p[1] * vec[a][1] + p[2] * vec[a][2];
			lo[a] = fmin(lo[a], t);
			hi[a] = fmax(hi[a], t);
		}
	}
	/* vec rows are ascending eigenvalues: report largest first */
	for (int a = 0; a < 3; a++)
		ext[a] = hi[2 - a] > lo[2 - a] ? (hi[2 - a] - lo[2 - a]) * src->scale : 0;
}

bool describe_axes(const struct scan *s, double centre[3], double axis[3][3])
{
	double sum[3] = { 0, 0, 0 }, cov[6] = { 0, 0, 0, 0, 0, 0 }, val[3], vec[3][3];
	size_t n = 0;
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		for (int k = 0; k < 3; k++)
			sum[k] += s->positions[3 * i + k];
		n++;
	}
	if (!n)
		return false;
	for (int k = 0; k < 3; k++)
		centre[k] = sum[k] / (double)n;
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
			continue;
		double d[3];
		for (int k = 0; k < 3; k++)
			d[k] = s->positions[3 * i + k] - centre[k];
		desc_cov_add(cov, d);
	}
	desc_eig3(cov, val, vec);
	/* vec rows are ascending eigenvalues: largest first */
	for (int a = 0; a < 3; a++)
		memcpy(axis[a], vec[2 - a], sizeof(axis[a]));
	return true;
}

static void size_block(const struct desc_info *info, float *out)
{
	/* log10 mm spans about 0.1 mm .. 10 m: map [-1, 4] to [-1, 1] */
	double v[DESC_SIZE_LEN] = {
		log10(fmax(info->extent[0], 1e-3)), log10(fmax(info->extent[1], 1e-3)),
		log10(fmax(info->extent[2], 1e-3)), log10(fmax(sqrt(info->area), 1e-3)),
	};
	for (int k = 0; k < DESC_SIZE_LEN; k++) {
		double t = (v[k] - 1.5) / 2.5;
		t = t < -1.5 ? -1.5 : t > 1.5 ? 1.5 : t;
		out[k] = (float)(t / (1.5 * sqrt((double)DESC_SIZE_LEN)));
	}
}

/*
 * Neighbourhoods built once per radius and shared by the bands that use
 * the radius (the S radius of one band is often the L radius of the
 * previous one).
 */
#define CACHE_MAX 16

struct nb_cache {
	int n;
	double r[CACHE_MAX];
	struct desc_nbhd nb[CACHE_MAX];
};

static int cache_get(struct nb_cache *c, const struct desc_src *src, double r, double target,
		     bool colour, uint64_t stream, const struct desc_nbhd **out, struct err *e)
{
	for (int i = 0; i < c->n; i++)
		if (c->r[i] == r && c->nb[i].target == target &&
		    (c->nb[i].colour || !colour || !src->colour)) {
			*out = &c->nb[i];
			return 0;
		}
	if (c->n == CACHE_MAX)
		return err_set(e, ERR_INTERNAL, "too many neighbourhood radii");
	/* the stream follows the radius, so equal radii draw equal points */
	int rc = desc_nbhd_init(&c->nb[c->n], src, r, target,
				stream + (uint64_t)llround(r * 1e6 + target), colour, e);
	if (rc < 0) {
		/* not counted in c->n, so cache_release would not free it */
		desc_nbhd_release(&c->nb[c->n]);
		return rc;
	}
	c->r[c->n] = r;
	*out = &c->nb[c->n++];
	return 0;
}

static void cache_release(struct nb_cache *c)
{
	for (int i = 0; i < c->n; i++)
		desc_nbhd_release(&c->nb[i]);
	c->n = 0;
}

/*
 * The band passes of one relief block: band k has the L radius l[k] and
 * the S radius max(s[k], DESC_RES_FACTOR x spacing) (in units of `unit`);
 * when that reaches l[k] the band is below the sampling resolution and
 * only its L fit runs, if bit k of keep_l or colour asks for it (fits[k]
 * then has no S pass, width[k] = 0; otherwise fits[k] is NULL).  A band
 * whose L radius exceeds max_l (normalised; 0 = no limit) would measure
 * the form and is not measured either.
 */
struct bands {
	struct desc_bfit *fit[DESC_RELIEF_SCALES];
	bool coarse[DESC_RELIEF_SCALES];  /* L beyond DESC_BAND_MAX */
	double rl[DESC_RELIEF_SCALES], rs[DESC_RELIEF_SCALES]; /* normalised */
	double width[DESC_RELIEF_SCALES]; /* band kept, 0..1 of its nominal width */
};

static int run_bands(struct bands *B, struct nb_cache *cache, const struct desc_src *src,
		     const struct desc_pts *C, const double *l, const double *s, double unit,
		     int n_colour, unsigned keep_l, double max_l, uint64_t stream,
		     struct desc_info *info, struct err *e)
{
	double res = DESC_RES_FACTOR * src->spacing;
	for (int k = 0; k < DESC_RELIEF_SCALES; k++) {
		double rl = l[k] / unit, rs0 = s[k] / unit, rs = fmax(rs0, res);
		const struct desc_nbhd *nbl, *nbs = NULL;
		bool sparse = false, colour = k < n_colour;
		int rc;
		B->rl[k] = rl;
		B->coarse[k] = max_l > 0 && rl > max_l;
		B->rs[k] = rs < rl && !B->coarse[k] ? rs : 0;
		B->width[k] = B->rs[k] > 0 ? fmin(1.0, (rl - rs) / (rl - rs0)) : 0;
		if (rs >= rl)
			info->flags |= DESC_UNDERSAMPLED;
		if (B->coarse[k] && !(keep_l & (1u << k)))
			continue;
		/* an unresolved band needs its L fit only for curvature or colour */
		if (rs >= rl && !colour && !(keep_l & (1u << k)))
			continue;
		B->fit[k] = alloc_array(C->n ? C->n : 1, sizeof(struct desc_bfit));
		if (!B->fit[k])
			return err_set(e, ERR_NOMEM, "out of memory describing %zu points", C->n);
		if ((rc = cache_get(cache, src, rl, DESC_N_L, colour, stream, &nbl, e)) < 0)
			return rc;
		if (B->rs[k] > 0 &&
		    (rc = cache_get(cache, src, rs, DESC_N_S, false, stream, &nbs, e)) < 0)
			return rc;
		rc = desc_fit_band(src, C, nbl, rl, nbs, B->rs[k], colour, B->fit[k], &sparse, e);
		if (rc < 0)
			return rc;
		if (sparse)
			info->flags |= DESC_UNDERSAMPLED;
	}
	return 0;
}

static void bands_release(struct bands *B)
{
	for (int k = 0; k < DESC_RELIEF_SCALES; k++) {
		xfree(B->fit[k]);
		B->fit[k] = NULL;
	}
}

/*
 * Local geometry of radius r measured at the wider radius reff the
 * sampling allows; curvedness stays in units of r.
 */
static int local_coarse(const struct desc_src *src, const struct desc_pts *F,
			struct nb_cache *cache, double r, double reff, float *h,
			struct desc_info *info, struct err *e)
{
	const struct desc_nbhd *nb;
	bool sparse = false;
	struct desc_bfit *fit = alloc_array(F->n ? F->n : 1, sizeof(*fit));
	if (!fit)
		return err_set(e, ERR_NOMEM, "out of memory describing %zu points", F->n);
	int rc = cache_get(cache, src, reff, DESC_N_L, false, DS_LEVEL, &nb, e);
	if (!rc)
		rc = desc_fit_band(src, F, nb, reff, NULL, 0, false, fit, &sparse, e);
	if (!rc) {
		for (size_t i = 0; i < F->n; i++) {
			fit[i].k1 *= (float)(r / reff);
			fit[i].k2 *= (float)(r / reff);
		}
		desc_local_hist(fit, F->n, h);
		info->flags |= DESC_UNDERSAMPLED;
		if (sparse)
			info->flags |= DESC_UNDERSAMPLED;
	}
	xfree(fit);
	return rc;
}

/*
 * The relief block from band passes; the band statistics go to bands[]
 * in physical units (unit: length of one normalised unit).
 */
static void relief_from_bands(const struct bands *B, size_t n, double unit, float *relief,
			      struct desc_band *bands)
{
	struct desc_band_raw none;
	float neutral[DESC_RELIEF_PER_SCALE];
	desc_band_measure(NULL, n, 1, &none);
	desc_band_features(&none, neutral);
	for (int k = 0; k < DESC_RELIEF_SCALES; k++) {
		float *o = relief + k * DESC_RELIEF_PER_SCALE;
		struct desc_band *bd = &bands[k];
		bd->l = B->rl[k] * unit;
		if (!(B->rs[k] > 0)) {
			memcpy(o, neutral, sizeof(neutral));
			bd->resolved = false;
			bd->coarse = B->coarse[k];
			bd->fine = !B->coarse[k];
		} else {
			struct desc_band_raw raw;
			desc_band_measure(B->fit[k], n, B->rl[k], &raw);
			desc_band_features(&raw, o);
			/*
			 * A band narrowed by the resolution fades to the values of
			 * no relief as its S radius nears its L radius, so the
			 * vector stays continuous in the sampling density.
			 */
			double a = B->width[k];
			for (int j = 0; j < DESC_RELIEF_PER_SCALE; j++)
				o[j] = (float)(a * o[j] + (1 - a) * neutral[j]);
			bd->resolved = true;
			bd->width = a;
			bd->s = B->rs[k] * unit;
			bd->sa = raw.sa * B->rl[k] * unit;
			bd->sq = raw.sq * B->rl[k] * unit;
			bd->ssk = raw.ssk;
			bd->sku = raw.sku;
			bd->sdr = raw.sdr;
			bd->aniso2 = raw.ridge;
			bd->aniso4 = raw.a4;
		}
		for (int j = 0; j < DESC_RELIEF_PER_SCALE; j++)
			o[j] *= (float)sqrt(1.0 / DESC_RELIEF_SCALES);
	}
}

int describe_scan(const struct scan *s, const struct describe_opts *o,
		  float *out, struct desc_info *info, struct err *e)
{
	struct describe_opts def;
	struct desc_info tmp;
	struct desc_src src;
	struct desc_pts C, F;
	struct nb_cache cache;
	struct bands rel, mm;
	int rc;

	if (!o) {
		describe_opts_init(&def);
		o = &def;
	}
	if (!info)
		info = &tmp;
	memset(info, 0, sizeof(*info));
	memset(out, 0, DIM * sizeof(float));
	memset(&C, 0, sizeof(C));
	memset(&F, 0, sizeof(F));
	memset(&cache, 0, sizeof(cache));
	memset(&rel, 0, sizeof(rel));
	memset(&mm, 0, sizeof(mm));
	rc = desc_src_init(&src, s, o, info, e);
	if (rc < 0)
		goto out;
	rc = desc_sample(&src, DESC_N_CENTRES, DS_CENTRES, true, &C, e);
	if (rc < 0)
		goto out;
	if (!src.mesh) {
		rc = desc_cloud_area(&src, &C, e);
		if (rc < 0)
			goto out;
		if (!src.cloud_normals) {
			rc = desc_orient_cloud(&src, &C, e);
			if (rc < 0)
				goto out;
		}
	}

	rc = desc_shape_block(&src, &C, out + OFF_SHAPE, e);
	if (rc < 0)
		goto out;
	/* the local fits run at every other centre: still stratified */
	rc = pts_stride(&C, o->fit_stride > 0 ? (size_t)o->fit_stride : 2, &F, e);
	if (rc < 0)
		goto out;

	/* colour presence decides whether the fits sample colour */
	colour_presence(&C, info);
	bool colour = info->flags & DESC_HAS_COLOUR;
	float *lbp = out + OFF_COLOUR + DESC_LAB_LEN;
	rc = run_bands(&rel, &cache, &src, &F, desc_relief_l, desc_relief_s, 1.0,
		       colour ? DESC_LBP_SCALES : 0, 6u, DESC_BAND_MAX, DS_LEVEL, info, e);
	if (rc < 0)
		goto out;
	/*
	 * Roughness below the resolution, where vertex noise shows: the
	 * finest S radius, every surface sampled alike.  The noise level is
	 * the curvedness that noise gives the fine local fits (below): the
	 * roughness over their radius, times sqrt(DESC_N_L / vertices in
	 * it) when the radius holds fewer vertices than the fit has points,
	 * so fewer independent heights are averaged (on noisy planes the
	 * fits' median C r is 0.76 to 1.23 times this level, dense or at 2.5
	 * spacings).  At a dense scan's resolution it is a fraction of a
	 * percent.
	 */
	{
		const struct desc_nbhd *nb;
		double rr = DESC_RES_FACTOR * src.spacing, rough = 0;
		double rfine = fmax(desc_local_radii[0], DESC_LOCAL_MIN_SPACINGS * src.spacing);
		rc = cache_get(&cache, &src, rr, DESC_N_S, false, DS_LEVEL, &nb, e);
		if (!rc)
			rc = desc_fit_roughness(&src, &F, nb, rr, DESC_NOISE_CENTRES, &rough, e);
		if (rc < 0)
			goto out;
		info->noise = rough / rfine;
		if (src.spacing > 0) {
			double nv = M_PI * (rfine / src.spacing) * (rfine / src.spacing);
			info->noise *= sqrt(DESC_N_L / fmin(DESC_N_L, nv));
		}
		info->noise_spacings = src.spacing > 0 ? rough / src.spacing : 0;
	}
	/*
	 * The local-geometry radii are the L radii of the two coarser bands,
	 * unless the sampling is too coarse for them: a curvature needs about
	 * twenty samples of the surface in its ball, so the radius is at
	 * least 2.5 spacings, for a mesh as for a cloud of its vertices.
	 */
	for (int k = 0; k < DESC_LOCAL_SCALES; k++) {
		float *h = out + OFF_LOCAL + k * DESC_SI_BINS * DESC_CV_BINS;
		double r = desc_local_radii[k], reff = fmax(r, DESC_LOCAL_MIN_SPACINGS * src.spacing);
		/*
		 * A mesh is sampled densely at any radius; a cloud has only its
		 * points, and a curvature from some twenty scattered points of a
		 * wider ball is not the one its mesh gives: a query leaves it out.
		 */
		if (reff > r && (info->flags & DESC_POINT_CLOUD))
			info->flags |= DESC_LOCAL_SPARSE;
		if (reff == r) {
			desc_local_hist(rel.fit[k + 1], F.n, h);
		} else {
			rc = local_coarse(&src, &F, &cache, r, reff, h, info, e);
			if (rc < 0)
				goto out;
		}
		for (int j = 0; j < DESC_SI_BINS * DESC_CV_BINS; j++)
			h[j] *= (float)sqrt(1.0 / (DESC_LOCAL_SCALES + 1));
	}
	/*
	 * How the form's faces stand to each other: pairs of centres with
	 * the normals of the coarsest relative band's L fits (0.27 R), which
	 * neither relief nor noise turn.
	 */
	{
		float *h = out + OFF_LOCAL + DESC_LOCAL_SCALES * DESC_SI_BINS * DESC_CV_BINS;
		if (desc_pair_hist(&F, rel.fit[DESC_RELIEF_SCALES - 1], DESC_PAIR_R,
				   desc_threads(&src), h) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory describing %zu points", F.n);
			goto out;
		}
		for (int j = 0; j < DESC_PAIR_BINS; j++)
			h[j] *= (float)sqrt(1.0 / (DESC_LOCAL_SCALES + 1));
	}
	double phys = src.scale * (src.units ? src.mm_per_unit : 1.0);
	for (int k = 0; k < DESC_RELIEF_SCALES; k++)
		info->relief[k].s = desc_relief_s[k] * phys;
	relief_from_bands(&rel, F.n, phys, out + OFF_RELIEF, info->relief);
	if (colour) {
		float *lab = out + OFF_COLOUR;
		desc_lab_hist(&C, lab);
		for (int k = 0; k < DESC_LBP_SCALES; k++)
			desc_lbp_hist(rel.fit[k], F.n, lbp + k * DESC_LBP_BINS);
		/* Lab 0.5, each LBP scale 0.25 of the squared norm */
		for (int j = 0; j < DESC_LAB_LEN; j++)
			lab[j] *= (float)sqrt(0.5);
		for (int j = 0; j < DESC_LBP_SCALES * DESC_LBP_BINS; j++)
			lbp[j] *= (float)sqrt(0.5 / DESC_LBP_SCALES);
	}
	bands_release(&rel);

	info->scale = src.scale;
	info->n_specks = src.n_specks;
	info->spacing = src.spacing * src.scale * (src.units ? src.mm_per_unit : 1.0);
	principal_extents(&src, info->extent);
	info->area = src.area * src.scale * src.scale;
	if (src.units) {
		double unit = src.mm_per_unit * src.scale; /* mm per normalised unit */
		info->flags |= DESC_HAS_UNITS;
		info->mm_per_unit = src.mm_per_unit;
		for (int k = 0; k < 3; k++)
			info->extent[k] *= src.mm_per_unit;
		info->area *= src.mm_per_unit * src.mm_per_unit;
		for (int k = 0; k < DESC_RELIEF_SCALES; k++)
			info->relief_mm[k].s = desc_relief_s_mm[k];
		rc = run_bands(&mm, &cache, &src, &F, desc_relief_l_mm, desc_relief_s_mm, unit,
			       0, 0, DESC_BAND_MAX, DS_LEVEL, info, e);
		if (rc < 0)
			goto out;
		relief_from_bands(&mm, F.n, unit, out + OFF_RELIEF_MM, info->relief_mm);
		size_block(info, out + OFF_SIZE);
	}
	apply_weights(out);
	out[OFF_NOISE] = (float)info->noise;
out:
	if (rc < 0)
		memset(out, 0, DIM * sizeof(float));
	bands_release(&rel);
	bands_release(&mm);
	cache_release(&cache);
	desc_pts_release(&F);
	desc_pts_release(&C);
	desc_src_release(&src);
	return rc;
}

int describe_relief(const struct scan *s, const struct describe_opts *o,
		    double s_radius, double l_radius, struct desc_band *out,
		    struct err *e)
{
	struct describe_opts def;
	struct desc_info info;
	struct desc_src src;
	struct desc_pts C, F;
	struct nb_cache cache;
	struct bands B;
	int rc;

	if (!o) {
		describe_opts_init(&def);
		o = &def;
	}
	memset(out, 0, sizeof(*out));
	memset(&C, 0, sizeof(C));
	memset(&F, 0, sizeof(F));
	memset(&cache, 0, sizeof(cache));
	memset(&B, 0, sizeof(B));
	memset(&info, 0, sizeof(info));
	if (!(s_radius > 0) || !(l_radius > s_radius) || !isfinite(l_radius))
		return err_set(e, ERR_FORMAT, "bad relief band %g..%g", s_radius, l_radius);
	rc = desc_src_init(&src, s, o, &info, e);
	if (rc < 0)
		goto out;
	rc = desc_sample(&src, DESC_N_CENTRES, DS_CENTRES, false, &C, e);
	if (rc < 0)
		goto out;
	if (!src.mesh) {
		rc = desc_cloud_area(&src, &C, e);
		if (!rc && !src.cloud_normals)
			rc = desc_orient_cloud(&src, &C, e);
		if (rc < 0)
			goto out;
	}
	rc = pts_stride(&C, o->fit_stride > 0 ? (size_t)o->fit_stride : 2, &F, e);
	if (rc < 0)
		goto out;
	double unit = src.scale * (src.units ? src.mm_per_unit : 1.0);
	double l[DESC_RELIEF_SCALES] = { l_radius, l_radius, l_radius };
	double sm[DESC_RELIEF_SCALES] = { s_radius, s_radius, s_radius };
	/* one band is enough: the three are the same */
	rc = run_bands(&B, &cache, &src, &F, l, sm, unit, 0, 0, 0, DS_LEVEL, &info, e);
	if (rc < 0)
		goto out;
	float tmp[DESC_RELIEF_LEN];
	struct desc_band bands[DESC_RELIEF_SCALES];
	memset(bands, 0, sizeof(bands));
	relief_from_bands(&B, F.n, unit, tmp, bands);
	*out = bands[0];
	if (!out->resolved)
		out->s = fmax(s_radius, DESC_RES_FACTOR * src.spacing * unit);
out:
	bands_release(&B);
	cache_release(&cache);
	desc_pts_release(&F);
	desc_pts_release(&C);
	desc_src_release(&src);
	return rc;
}
