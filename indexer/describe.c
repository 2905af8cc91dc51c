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

const double desc_local_radii[DESC_LOCAL_SCALES] = { 0.12, 0.30 };
const double desc_relief_radii[DESC_RELIEF_SCALES] = { 0.02, 0.04, 0.08 };
const double desc_relief_radii_mm[DESC_RELIEF_SCALES] = { 0.25, 1.0, 4.0 };

#define OFF_SHAPE 0
#define OFF_LOCAL (OFF_SHAPE + DESC_SHAPE_LEN)
#define OFF_RELIEF (OFF_LOCAL + DESC_LOCAL_LEN)
#define OFF_RELIEF_MM (OFF_RELIEF + DESC_RELIEF_LEN)
#define OFF_COLOUR (OFF_RELIEF_MM + DESC_RELIEF_LEN)
#define OFF_SIZE (OFF_COLOUR + DESC_COLOUR_LEN)
#define DIM (OFF_SIZE + DESC_SIZE_LEN)

static const struct desc_block blocks[DESC_N_BLOCKS] = {
	{ "shape", OFF_SHAPE, DESC_SHAPE_LEN, 1.0f,
	  "D2/A3/D1 distributions, SH energies of the distance field, PCA ratios" },
	{ "local", OFF_LOCAL, DESC_LOCAL_LEN, 1.0f,
	  "shape index x curvedness at radii 0.12 and 0.30 of the RMS radius" },
	{ "relief", OFF_RELIEF, DESC_RELIEF_LEN, 1.5f,
	  "residual-height statistics at radii 0.02, 0.04, 0.08 of the RMS radius" },
	{ "relief_mm", OFF_RELIEF_MM, DESC_RELIEF_LEN, 0.75f,
	  "residual-height statistics at radii 0.25, 1, 4 mm (units known)" },
	{ "colour", OFF_COLOUR, DESC_COLOUR_LEN, 0.75f,
	  "CIELAB histogram and ring LBP riu2 at two radii (colour present)" },
	{ "size", OFF_SIZE, DESC_SIZE_LEN, 0.05f,
	  "log10 principal extents and sqrt(area) in mm (units known)" },
};

const struct desc_block *describe_blocks(void)
{
	return blocks;
}

size_t describe_dim(void)
{
	return DIM;
}

void describe_default_weights(float *w)
{
	for (int b = 0; b < DESC_N_BLOCKS; b++)
		w[b] = blocks[b].weight;
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

/* Extents along the principal axes over the finite vertices, model units. */
static void principal_extents(const struct desc_src *src, double ext[3])
{
	double val[3], vec[3][3];
	desc_eig3(src->cov, val, vec);
	double lo[3] = { INFINITY, INFINITY, INFINITY }, hi[3] = { -INFINITY, -INFINITY, -INFINITY };
	const struct scan *s = src->s;
	for (size_t i = 0; i < s->n_vertices; i++) {
		if (!scan_vertex_finite(s, i))
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
 * The fits a relief block needs: for band k the L-filter fit at radii[k]
 * and the S-filter fit at max(radii[k] / 2, DESC_RES_FACTOR x spacing);
 * a band whose S radius reaches its L radius is below the sampling
 * resolution.  Radii shared by two bands are fitted once.
 */
struct fit_plan {
	int n;
	double r[2 * DESC_RELIEF_SCALES];
	double lag[2 * DESC_RELIEF_SCALES];
	bool colour[2 * DESC_RELIEF_SCALES];
	struct desc_cfit *fit[2 * DESC_RELIEF_SCALES];
	int l_of[DESC_RELIEF_SCALES], s_of[DESC_RELIEF_SCALES]; /* -1: none */
};

static int plan_add(struct fit_plan *p, double r)
{
	for (int i = 0; i < p->n; i++)
		if (p->r[i] == r)
			return i;
	p->r[p->n] = r;
	p->lag[p->n] = 0;
	p->colour[p->n] = false;
	p->fit[p->n] = NULL;
	return p->n++;
}

static int relief_block(const struct desc_src *src, const struct desc_pts *C,
			const double *radii, double unit, uint64_t stream, bool lbp,
			float *relief, float *lbp_out, struct desc_info *info,
			struct err *e)
{
	struct fit_plan p;
	int rc = 0;
	memset(&p, 0, sizeof(p));
	double res = DESC_RES_FACTOR * src->spacing;
	for (int k = 0; k < DESC_RELIEF_SCALES; k++) {
		double rl = radii[k] / unit, rs = fmax(0.5 * rl, res);
		p.l_of[k] = p.s_of[k] = -1;
		if (rs >= rl) {
			info->flags |= DESC_UNDERSAMPLED;
			continue;
		}
		int l = plan_add(&p, rl), t = plan_add(&p, rs);
		p.lag[l] = rs;
		p.colour[l] = lbp && k < DESC_LBP_SCALES;
		p.l_of[k] = l;
		p.s_of[k] = t;
	}
	for (int i = 0; i < p.n; i++) {
		bool sparse = false;
		p.fit[i] = alloc_array(C->n ? C->n : 1, sizeof(struct desc_cfit));
		if (!p.fit[i]) {
			rc = err_set(e, ERR_NOMEM, "out of memory describing %zu points", C->n);
			goto out;
		}
		rc = desc_fit_scale(src, C, p.r[i], p.lag[i], stream + (uint64_t)i,
				    p.colour[i], p.fit[i], &sparse, e);
		if (rc < 0)
			goto out;
		if (sparse)
			info->flags |= DESC_UNDERSAMPLED;
	}
	for (int k = 0; k < DESC_RELIEF_SCALES; k++) {
		float *o = relief + k * DESC_RELIEF_PER_SCALE;
		float neutral[DESC_RELIEF_PER_SCALE];
		desc_relief_band(NULL, NULL, C->n, 1, neutral);
		if (p.l_of[k] < 0) {
			memcpy(o, neutral, sizeof(neutral));
		} else {
			/*
			 * A band narrowed by the resolution fades to the values of
			 * no relief as its S radius nears its L radius, so the
			 * vector stays continuous in the sampling density.
			 */
			double rl = p.r[p.l_of[k]], rs = p.r[p.s_of[k]];
			double a = fmin(1.0, (rl - rs) / (0.5 * rl));
			desc_relief_band(p.fit[p.l_of[k]], p.fit[p.s_of[k]], C->n, rl, o);
			for (int j = 0; j < DESC_RELIEF_PER_SCALE; j++)
				o[j] = (float)(a * o[j] + (1 - a) * neutral[j]);
		}
		for (int j = 0; j < DESC_RELIEF_PER_SCALE; j++)
			o[j] *= (float)sqrt(1.0 / DESC_RELIEF_SCALES);
		if (lbp && k < DESC_LBP_SCALES && p.l_of[k] >= 0)
			desc_lbp_hist(p.fit[p.l_of[k]], C->n, lbp_out + k * DESC_LBP_BINS);
	}
out:
	for (int i = 0; i < p.n; i++)
		xfree(p.fit[i]);
	return rc;
}

int describe_scan(const struct scan *s, const struct describe_opts *o,
		  float *out, struct desc_info *info, struct err *e)
{
	struct describe_opts def;
	struct desc_info tmp;
	struct desc_src src;
	struct desc_pts C;
	struct desc_cfit *fits = NULL;
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
	fits = alloc_array(C.n ? C.n : 1, sizeof(*fits));
	if (!fits) {
		rc = err_set(e, ERR_NOMEM, "out of memory describing %zu points", C.n);
		goto out;
	}

	rc = desc_shape_block(&src, &C, out + OFF_SHAPE, e);
	if (rc < 0)
		goto out;

	for (int k = 0; k < DESC_LOCAL_SCALES; k++) {
		bool sparse = false;
		double r = desc_local_radii[k];
		rc = desc_fit_scale(&src, &C, r, 0, DS_LEVEL + (uint64_t)k, false, fits,
				    &sparse, e);
		if (rc < 0)
			goto out;
		if (sparse)
			info->flags |= DESC_UNDERSAMPLED;
		float *h = out + OFF_LOCAL + k * DESC_SI_BINS * DESC_CV_BINS;
		desc_local_hist(fits, C.n, h);
		for (int j = 0; j < DESC_SI_BINS * DESC_CV_BINS; j++)
			h[j] *= (float)sqrt(1.0 / DESC_LOCAL_SCALES);
	}

	colour_presence(&C, info);
	bool colour = info->flags & DESC_HAS_COLOUR;
	float *lbp = out + OFF_COLOUR + DESC_LAB_LEN;
	rc = relief_block(&src, &C, desc_relief_radii, 1.0, DS_LEVEL + 4, colour,
			  out + OFF_RELIEF, lbp, info, e);
	if (rc < 0)
		goto out;
	if (colour) {
		float *lab = out + OFF_COLOUR;
		desc_lab_hist(&C, lab);
		/* Lab 0.5, each LBP scale 0.25 of the squared norm */
		for (int j = 0; j < DESC_LAB_LEN; j++)
			lab[j] *= (float)sqrt(0.5);
		for (int j = 0; j < DESC_LBP_SCALES * DESC_LBP_BINS; j++)
			lbp[j] *= (float)sqrt(0.5 / DESC_LBP_SCALES);
	}

	info->scale = src.scale;
	principal_extents(&src, info->extent);
	info->area = src.area * src.scale * src.scale;
	if (src.units) {
		double unit = src.mm_per_unit * src.scale; /* mm per normalised unit */
		info->flags |= DESC_HAS_UNITS;
		info->mm_per_unit = src.mm_per_unit;
		for (int k = 0; k < 3; k++)
			info->extent[k] *= src.mm_per_unit;
		info->area *= src.mm_per_unit * src.mm_per_unit;
		rc = relief_block(&src, &C, desc_relief_radii_mm, unit, DS_LOCAL, false,
				  out + OFF_RELIEF_MM, NULL, info, e);
		if (rc < 0)
			goto out;
		size_block(info, out + OFF_SIZE);
	}
	apply_weights(out);
out:
	if (rc < 0)
		memset(out, 0, DIM * sizeof(float));
	xfree(fits);
	desc_pts_release(&C);
	desc_src_release(&src);
	return rc;
}
