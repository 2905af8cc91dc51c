/*
 * desc_fit.c - local surface fits at a centre, for one relief band at a
 * time: the geometry under the local-geometry and relief blocks and the
 * colour rings of the LBP.
 *
 * L pass.  The points of the ball of radius l (the L-filter radius) get
 * biweight weights w = (1 - d^2/l^2)^2.  Their weighted covariance gives
 * the local frame (normal = least eigenvector, oriented by the points'
 * surface normals, else by the centre's).  A height field
 *     z = f + d u + e v + a u^2 + b uv + c v^2     (u, v, z in units of l)
 * is fitted by weighted least squares: the form at scale l (a local MLS
 * quadric, Levin 2003; curvature from osculating jets, Cazals & Pouget
 * 2005).  From it:
 *   - principal curvatures k1 >= k2 at the centre from the first and
 *     second fundamental forms (convex = positive);
 *   - the centre's height above it, h = -f (a leave-one-out residual: the
 *     centre is not among the points);
 *   - a border flag when the ball's weighted centroid sits off the centre
 *     (the ball is cut by the surface's edge);
 *   - the 4-fold harmonic of the directional variogram of the residuals
 *     e_j: with D_j = e_j - h at lag rho_j in [s, 2 s] and tangent angle
 *     phi_j, |sum w D^2 exp(4 i phi)| / sum w D^2 (rotation-free);
 *   - with colour, the rotation-invariant uniform LBP code (Ojala et al.
 *     2002) of P = 8 points on the circle of radius l/2 in the tangent
 *     plane, each taking the lightness of the nearest point.
 *
 * S pass (bands only).  The points of the ball of radius s (the S-filter
 * radius, drawn at the density that radius needs) are expressed in the L
 * frame and replaced by their residuals e above the L quadric.  A plane
 * fitted to e (biweight over s) gives the band height at the centre, the
 * S-filtered residual surface: the ISO 25178 scale-limited surface between
 * s and l, with neither the form (removed by L) nor the curvature bias a
 * plain smoothing would leave (about k s^2 / 8).  Its slope gives Sdr;
 * a quadric fitted to e gives the band's Hessian, whose ridge-ness
 * ((|l1| - |l2|) / (|l1| + |l2|))^2 is 1 on ridges and grooves and 0 on
 * dimples and symmetric saddles.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

void desc_eig3(const double a[6], double val[3], double vec[3][3])
{
	double m[3][3] = { { a[0], a[1], a[2] }, { a[1], a[3], a[4] }, { a[2], a[4], a[5] } };
	double v[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
	for (int sweep = 0; sweep < 32; sweep++) {
		double off = m[0][1] * m[0][1] + m[0][2] * m[0][2] + m[1][2] * m[1][2];
		double scale = m[0][0] * m[0][0] + m[1][1] * m[1][1] + m[2][2] * m[2][2];
		if (off <= 1e-30 * scale || off == 0)
			break;
		for (int p = 0; p < 2; p++)
		for (int q = p + 1; q < 3; q++) {
			if (m[p][q] == 0)
				continue;
			double theta = (m[q][q] - m[p][p]) / (2 * m[p][q]);
			double t = (theta >= 0 ? 1.0 : -1.0) /
				   (fabs(theta) + sqrt(theta * theta + 1));
			double c = 1 / sqrt(t * t + 1), s = t * c;
			for (int k = 0; k < 3; k++) {
				double mkp = m[k][p], mkq = m[k][q];
				m[k][p] = c * mkp - s * mkq;
				m[k][q] = s * mkp + c * mkq;
			}
			for (int k = 0; k < 3; k++) {
				double mpk = m[p][k], mqk = m[q][k];
				m[p][k] = c * mpk - s * mqk;
				m[q][k] = s * mpk + c * mqk;
			}
			for (int k = 0; k < 3; k++) {
				double vkp = v[k][p], vkq = v[k][q];
				v[k][p] = c * vkp - s * vkq;
				v[k][q] = s * vkp + c * vkq;
			}
		}
	}
	int idx[3] = { 0, 1, 2 };
	for (int i = 0; i < 2; i++)
		for (int j = i + 1; j < 3; j++)
			if (m[idx[j]][idx[j]] < m[idx[i]][idx[i]]) {
				int t = idx[i];
				idx[i] = idx[j];
				idx[j] = t;
			}
	for (int i = 0; i < 3; i++) {
		val[i] = m[idx[i]][idx[i]];
		for (int k = 0; k < 3; k++)
			vec[i][k] = v[k][idx[i]];
	}
}

void desc_least_axis(const double a[6], double n[3])
{
	double q = (a[0] + a[3] + a[5]) / 3;
	double p1 = a[1] * a[1] + a[2] * a[2] + a[4] * a[4];
	double d0 = a[0] - q, d1 = a[3] - q, d2 = a[5] - q;
	double p2 = d0 * d0 + d1 * d1 + d2 * d2 + 2 * p1;
	double p = sqrt(p2 / 6);
	if (!(p > 1e-300) || !isfinite(p)) {
		n[0] = 0;
		n[1] = 0;
		n[2] = 1;
		return;
	}
	/* eigenvalues of a symmetric 3x3 by the trigonometric method */
	double b00 = d0 / p, b11 = d1 / p, b22 = d2 / p;
	double b01 = a[1] / p, b02 = a[2] / p, b12 = a[4] / p;
	double det = b00 * (b11 * b22 - b12 * b12) - b01 * (b01 * b22 - b12 * b02) +
		     b02 * (b01 * b12 - b11 * b02);
	double r = det / 2;
	r = r < -1 ? -1 : r > 1 ? 1 : r;
	double phi = acos(r) / 3;
	double lmin = q + 2 * p * cos(phi + 2 * M_PI / 3);
	/* eigenvector: the largest cross product of two rows of A - lmin I */
	double r0[3] = { a[0] - lmin, a[1], a[2] };
	double r1[3] = { a[1], a[3] - lmin, a[4] };
	double r2[3] = { a[2], a[4], a[5] - lmin };
	const double *rows[3][2] = { { r0, r1 }, { r0, r2 }, { r1, r2 } };
	double best = 0, c[3] = { 0, 0, 1 };
	for (int k = 0; k < 3; k++) {
		const double *u = rows[k][0], *v = rows[k][1];
		double x[3] = { u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
				u[0] * v[1] - u[1] * v[0] };
		double l = x[0] * x[0] + x[1] * x[1] + x[2] * x[2];
		if (l > best) {
			best = l;
			c[0] = x[0];
			c[1] = x[1];
			c[2] = x[2];
		}
	}
	double scale2 = (r0[0] * r0[0] + r0[1] * r0[1] + r0[2] * r0[2]) +
			(r1[0] * r1[0] + r1[1] * r1[1] + r1[2] * r1[2]) +
			(r2[0] * r2[0] + r2[1] * r2[1] + r2[2] * r2[2]);
	if (!(best > 1e-20 * scale2 * scale2)) {
		/* two small eigenvalues (points along a line): Jacobi decides */
		double val[3], vec[3][3];
		desc_eig3(a, val, vec);
		for (int k = 0; k < 3; k++)
			n[k] = vec[0][k];
		return;
	}
	double l = sqrt(best);
	for (int k = 0; k < 3; k++)
		n[k] = c[k] / l;
}

/*
 * Solve the n x n symmetric positive system A x = b (A packed full,
 * row-major) by Cholesky with a small ridge.  Returns false if singular.
 */
static bool solve_spd(double *A, double *b, int n)
{
	double tr = 0;
	for (int i = 0; i < n; i++)
		tr += A[i * n + i];
	if (!(tr > 0))
		return false;
	for (int i = 0; i < n; i++)
		A[i * n + i] += 1e-10 * tr;
	for (int j = 0; j < n; j++) {
		double s = A[j * n + j];
		for (int k = 0; k < j; k++)
			s -= A[j * n + k] * A[j * n + k];
		if (!(s > 1e-14 * tr))
			return false;
		double l = sqrt(s);
		A[j * n + j] = l;
		for (int i = j + 1; i < n; i++) {
			double t = A[i * n + j];
			for (int k = 0; k < j; k++)
				t -= A[i * n + k] * A[j * n + k];
			A[i * n + j] = t / l;
		}
	}
	for (int i = 0; i < n; i++) {
		double t = b[i];
		for (int k = 0; k < i; k++)
			t -= A[i * n + k] * b[k];
		b[i] = t / A[i * n + i];
	}
	for (int i = n - 1; i >= 0; i--) {
		double t = b[i];
		for (int k = i + 1; k < n; k++)
			t -= A[k * n + i] * b[k];
		b[i] = t / A[i * n + i];
	}
	return true;
}

/* Weighted least squares of z on the first n basis functions
 * [u^2, uv, v^2, u, v, 1] reordered as [1, u, v, u^2, uv, v^2]. */
#define POLY_MAX 15
#define POLY_DEG 4

/* Basis functions u^a v^b in order of degree: 1, u, v, u^2, uv, v^2, ... */
static const int8_t poly_a[POLY_MAX] = { 0, 1, 0, 2, 1, 0, 3, 2, 1, 0, 4, 3, 2, 1, 0 };
static const int8_t poly_b[POLY_MAX] = { 0, 0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4 };

/* Weighted moments sum w u^i v^j (i + j <= 2 deg) and sum w z u^i v^j. */
struct moments {
	int deg;
	double M[2 * POLY_DEG + 1][2 * POLY_DEG + 1];
	double R[POLY_DEG + 1][POLY_DEG + 1];
};

static void moments_acc(struct moments *mo, int deg, const double *u, const double *v,
			const double *z, const double *w, size_t m)
{
	int d2 = 2 * deg;
	memset(mo, 0, sizeof(*mo));
	mo->deg = deg;
	for (size_t j = 0; j < m; j++) {
		if (w[j] <= 0)
			continue;
		double pu[2 * POLY_DEG + 1], pv[2 * POLY_DEG + 1];
		pu[0] = w[j];
		pv[0] = 1;
		for (int k = 1; k <= d2; k++) {
			pu[k] = pu[k - 1] * u[j];
			pv[k] = pv[k - 1] * v[j];
		}
		for (int a = 0; a <= d2; a++)
			for (int c = 0; a + c <= d2; c++)
				mo->M[a][c] += pu[a] * pv[c];
		for (int a = 0; a <= deg; a++)
			for (int c = 0; a + c <= deg; c++)
				mo->R[a][c] += pu[a] * pv[c] * z[j];
	}
}

/*
 * Weighted least squares of z on the first n basis functions (3 plane,
 * 6 quadric, 10 cubic, 15 quartic; n may not exceed what mo was built
 * for) from the moments: the normal matrix entries are the moments, so
 * one accumulation serves every order (45 sums for a quartic instead of
 * 120 products per point).
 */
static bool moments_solve(const struct moments *mo, int n, double coef[POLY_MAX])
{
	double A[POLY_MAX * POLY_MAX], b[POLY_MAX];
	int deg = n <= 1 ? 0 : n <= 3 ? 1 : n <= 6 ? 2 : n <= 10 ? 3 : 4;
	if (deg > mo->deg)
		return false;
	for (int p = 0; p < n; p++) {
		b[p] = mo->R[poly_a[p]][poly_b[p]];
		for (int q = 0; q < n; q++)
			A[p * n + q] = mo->M[poly_a[p] + poly_a[q]][poly_b[p] + poly_b[q]];
	}
	if (!solve_spd(A, b, n))
		return false;
	for (int p = 0; p < POLY_MAX; p++)
		coef[p] = p < n ? b[p] : 0;
	return true;
}

static bool fit_poly(const double *u, const double *v, const double *z,
		     const double *w, size_t m, int n, double coef[POLY_MAX])
{
	struct moments mo;
	int deg = n <= 1 ? 0 : n <= 3 ? 1 : n <= 6 ? 2 : n <= 10 ? 3 : 4;
	moments_acc(&mo, deg, u, v, z, w, m);
	return moments_solve(&mo, n, coef);
}

/* Value of the polynomial with coefficients c (fit_poly order) at (u, v). */
static double poly_eval(const double *c, double u, double v)
{
	double u2 = u * u, v2 = v * v;
	return c[0] + c[1] * u + c[2] * v + c[3] * u2 + c[4] * u * v + c[5] * v2 +
	       c[6] * u2 * u + c[7] * u2 * v + c[8] * u * v2 + c[9] * v2 * v +
	       c[10] * u2 * u2 + c[11] * u2 * u * v + c[12] * u2 * v2 + c[13] * u * v2 * v +
	       c[14] * v2 * v2;
}

/* Scratch per thread. */
struct fit_scratch {
	struct desc_gather g;
	double *u, *v, *z, *w;
};

static void scratch_release(struct fit_scratch *s)
{
	desc_gather_release(&s->g);
	xfree(s->u);
	xfree(s->v);
	xfree(s->z);
	xfree(s->w);
	memset(s, 0, sizeof(*s));
}

static int scratch_alloc(struct fit_scratch *s)
{
	memset(s, 0, sizeof(*s));
	if (desc_gather_alloc(&s->g, DESC_NB_CAP) < 0)
		return ERR_NOMEM;
	s->u = alloc_array(DESC_NB_CAP, sizeof(double));
	s->v = alloc_array(DESC_NB_CAP, sizeof(double));
	s->z = alloc_array(DESC_NB_CAP, sizeof(double));
	s->w = alloc_array(DESC_NB_CAP, sizeof(double));
	if (!s->u || !s->v || !s->z || !s->w) {
		scratch_release(s);
		return ERR_NOMEM;
	}
	return 0;
}

static uint8_t lbp_riu2(const double *g, double gc)
{
	unsigned bits = 0, ones = 0, trans = 0;
	for (int p = 0; p < DESC_LBP_P; p++)
		if (g[p] >= gc) {
			bits |= 1u << p;
			ones++;
		}
	for (int p = 0; p < DESC_LBP_P; p++) {
		unsigned a = (bits >> p) & 1u, b = (bits >> ((p + 1) % DESC_LBP_P)) & 1u;
		trans += a != b;
	}
	return (uint8_t)(trans <= 2 ? ones : DESC_LBP_P + 1);
}

/* Gather around centre i, widening the ball up to 4x when too sparse. */
static size_t gather_widen(const struct desc_nbhd *nb, const struct desc_src *src,
			   const struct desc_pts *C, size_t i, double *r, int max_tries,
			   struct desc_gather *g, uint8_t *widened)
{
	const float *c = C->pos + 3 * i;
	uint32_t excl = C->id ? C->id[i] : UINT32_MAX;
	for (int tries = 0; tries < max_tries; tries++) {
		desc_nbhd_gather(nb, src, c, excl, i, *r, g);
		if (g->n >= DESC_MIN_NB)
			break;
		if (tries + 1 < max_tries) {
			*r *= 2;
			*widened = 1;
		}
	}
	return g->n;
}

/* Biweight weights of the gathered points for radius r; returns the sum. */
static double biweight(const struct desc_gather *g, double r, double *w)
{
	double inv_r2 = 1.0 / (r * r), sw = 0;
	for (size_t j = 0; j < g->n; j++) {
		const double *p = g->p + 3 * j;
		double t = 1 - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) * inv_r2;
		w[j] = t > 0 ? t * t : 0;
		sw += w[j];
	}
	return sw;
}

/* An orthonormal tangent basis of the unit normal n (any will do). */
static void tangents(const double n[3], double t1[3], double t2[3])
{
	int ax = fabs(n[0]) < fabs(n[1]) ? (fabs(n[0]) < fabs(n[2]) ? 0 : 2)
					 : (fabs(n[1]) < fabs(n[2]) ? 1 : 2);
	double e[3] = { 0, 0, 0 };
	e[ax] = 1;
	double t[3] = { n[1] * e[2] - n[2] * e[1], n[2] * e[0] - n[0] * e[2],
			n[0] * e[1] - n[1] * e[0] };
	double tl = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
	for (int k = 0; k < 3; k++)
		t1[k] = t[k] / tl;
	t2[0] = n[1] * t1[2] - n[2] * t1[1];
	t2[1] = n[2] * t1[0] - n[0] * t1[2];
	t2[2] = n[0] * t1[1] - n[1] * t1[0];
}

/* The S pass of centre i: band height, slope and ridge-ness. */
static void fit_band(const struct desc_nbhd *nbs, const struct desc_src *src,
		     const struct desc_pts *C, size_t i, double rs, const double n[3],
		     const double t1[3], const double t2[3], double rl, const double *q,
		     struct fit_scratch *S, struct desc_bfit *out)
{
	struct desc_gather *g = &S->g;
	double r = rs;
	uint8_t wid = 0;
	/* the S ball may grow once: past that it would no longer be S */
	if (gather_widen(nbs, src, C, i, &r, 2, g, &wid) < DESC_MIN_NB)
		return;
	if (wid)
		out->widened = 1;
	if (!(biweight(g, r, S->w) > 0))
		return;
	double k = rl / r;
	for (size_t j = 0; j < g->n; j++) {
		const double *p = g->p + 3 * j;
		double u = (p[0] * t1[0] + p[1] * t1[1] + p[2] * t1[2]) / rl;
		double v = (p[0] * t2[0] + p[1] * t2[1] + p[2] * t2[2]) / rl;
		double z = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / rl;
		double e = z - poly_eval(q, u, v);
		/* in units of the S radius, for conditioning */
		S->u[j] = u * k;
		S->v[j] = v * k;
		S->z[j] = e * k;
	}
	double pl[POLY_MAX], qs[POLY_MAX];
	if (!fit_poly(S->u, S->v, S->z, S->w, g->n, 3, pl))
		return;
	out->hb = (float)(pl[0] * r);
	out->g2 = (float)(pl[1] * pl[1] + pl[2] * pl[2]);
	if (fit_poly(S->u, S->v, S->z, S->w, g->n, 6, qs)) {
		/* Hessian [2a b; b 2c] in 1/S-radius units */
		double h11 = 2 * qs[3], h12 = qs[4], h22 = 2 * qs[5];
		double mid = 0.5 * (h11 + h22);
		double dd = sqrt(0.25 * (h11 - h22) * (h11 - h22) + h12 * h12);
		double l1 = fabs(mid + dd), l2 = fabs(mid - dd);
		double big = fmax(l1, l2), small = fmin(l1, l2);
		out->re = (float)(l1 * l1 + l2 * l2);
		if (big > 0) {
			double t = (big - small) / (big + small);
			out->rq = (float)(t * t);
		}
	}
	out->sok = 1;
}

/*
 * The least axis of the ball's weighted covariance (w, summing to sw):
 * the plane's normal, unoriented.
 */
static void least_axis_of_ball(const struct desc_gather *g, const double *w, double sw,
			       double n[3])
{
	double mean[3] = { 0, 0, 0 }, cov[6] = { 0 };
	for (size_t j = 0; j < g->n; j++)
		for (int k = 0; k < 3; k++)
			mean[k] += w[j] * g->p[3 * j + k];
	for (int k = 0; k < 3; k++)
		mean[k] /= sw;
	for (size_t j = 0; j < g->n; j++) {
		const double *p = g->p + 3 * j;
		double d[3] = { p[0] - mean[0], p[1] - mean[1], p[2] - mean[2] };
		cov[0] += w[j] * d[0] * d[0];
		cov[1] += w[j] * d[0] * d[1];
		cov[2] += w[j] * d[0] * d[2];
		cov[3] += w[j] * d[1] * d[1];
		cov[4] += w[j] * d[1] * d[2];
		cov[5] += w[j] * d[2] * d[2];
	}
	desc_least_axis(cov, n);
}

static void fit_centre(const struct desc_nbhd *nbl, const struct desc_nbhd *nbs,
		       const struct desc_src *src, const struct desc_pts *C, size_t i,
		       double r0, double rs, bool colour, struct fit_scratch *S,
		       struct desc_bfit *out)
{
	memset(out, 0, sizeof(*out));
	out->lbp = 255;
	const float *c = C->pos + 3 * i;
	double r = r0;
	struct desc_gather *g = &S->g;
	size_t m = gather_widen(nbl, src, C, i, &r, 3, g, &out->widened);
	if (m < DESC_MIN_NB)
		return;
	double sw = biweight(g, r, S->w);
	if (!(sw > 0))
		return;
	double n[3], t1[3], t2[3];
	least_axis_of_ball(g, S->w, sw, n);
	/* orientation: surface normals of the ball, else away from the centroid */
	double ref[3] = { C->nrm[3 * i], C->nrm[3 * i + 1], C->nrm[3 * i + 2] };
	for (size_t j = 0; j < m; j++)
		for (int k = 0; k < 3; k++)
			ref[k] += S->w[j] * (double)g->nrm[3 * j + k];
	if (!(ref[0] * ref[0] + ref[1] * ref[1] + ref[2] * ref[2] > 1e-12))
		for (int k = 0; k < 3; k++)
			ref[k] = c[k];
	if (n[0] * ref[0] + n[1] * ref[1] + n[2] * ref[2] < 0)
		for (int k = 0; k < 3; k++)
			n[k] = -n[k];
	tangents(n, t1, t2);
	for (int k = 0; k < 3; k++)
		out->nrm[k] = (float)n[k];
	double inv_r = 1.0 / r;
	for (size_t j = 0; j < m; j++) {
		const double *p = g->p + 3 * j;
		S->u[j] = (p[0] * t1[0] + p[1] * t1[1] + p[2] * t1[2]) * inv_r;
		S->v[j] = (p[0] * t2[0] + p[1] * t2[1] + p[2] * t2[2]) * inv_r;
		S->z[j] = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) * inv_r;
	}
	/*
	 * A ball cut by the edge of the surface (a scan's border, a crop)
	 * has its weighted centroid pulled inwards, about 0.3 r for a half
	 * disc; fits there extrapolate, so they are marked and left out of
	 * the statistics.
	 */
	{
		double cu = 0, cv = 0;
		for (size_t j = 0; j < m; j++) {
			cu += S->w[j] * S->u[j];
			cv += S->w[j] * S->v[j];
		}
		cu /= sw;
		cv /= sw;
		out->border = cu * cu + cv * cv > 0.15 * 0.15;
	}
	/*
	 * The L filter is a quartic: a quadric leaves the form's fourth-order
	 * terms in the band (a cylinder of radius 17 mm leaks 0.02 mm RMS into
	 * a 2-8 mm band), which is the whole amplitude of a fine relief.
	 */
	double q[POLY_MAX], qd[POLY_MAX];
	struct moments mo;
	moments_acc(&mo, POLY_DEG, S->u, S->v, S->z, S->w, m);
	if (!moments_solve(&mo, 15, q) && !moments_solve(&mo, 6, q) && !moments_solve(&mo, 3, q))
		return;
	/*
	 * Curvature is the form's at this radius: from the quadric fit of the
	 * same points, which averages noise that the quartic would follow.
	 */
	if (!moments_solve(&mo, 6, qd))
		memcpy(qd, q, sizeof(qd));
	/* qd = [f, d, e, a, b, c]: z = f + d u + e v + a u^2 + b uv + c v^2 */
	double f = q[0], d = qd[1], ee = qd[2], A = qd[3], B = qd[4], Cq = qd[5];
	double E = 1 + d * d, F = d * ee, G = 1 + ee * ee;
	double nn = sqrt(1 + d * d + ee * ee);
	double L = 2 * A / nn, M = B / nn, N = 2 * Cq / nn;
	double det = E * G - F * F;
	double K = (L * N - M * M) / det;
	double H = (E * N - 2 * F * M + G * L) / (2 * det);
	double Hc = -H; /* convex (surface bending away from the normal) positive */
	double disc = Hc * Hc - K;
	double sq = disc > 0 ? sqrt(disc) : 0;
	double rs_ = r0 / r; /* curvatures in units of the nominal radius */
	out->k1 = (float)((Hc + sq) * rs_);
	out->k2 = (float)((Hc - sq) * rs_);
	double hc = -f;
	out->h = (float)(hc * r);

	/* 4-fold harmonic of the residual variogram at lags in [s, 2 s] */
	if (rs > 0) {
		double lo2 = rs / r, hi2;
		lo2 *= lo2;
		hi2 = 4 * lo2;
		double s0 = 0, s4r = 0, s4i = 0;
		for (size_t j = 0; j < m; j++) {
			double u = S->u[j], v = S->v[j], rho2 = u * u + v * v;
			if (rho2 < lo2 || rho2 > hi2 || !(rho2 > 1e-12))
				continue;
			double zq = poly_eval(q, u, v);
			double dz = S->z[j] - zq - hc;
			double wd = S->w[j] * dz * dz;
			double c2 = (u * u - v * v) / rho2, s2 = 2 * u * v / rho2;
			s0 += wd;
			s4r += wd * (c2 * c2 - s2 * s2);
			s4i += wd * (2 * c2 * s2);
		}
		if (s0 > 0)
			out->a4 = (float)(sqrt(s4r * s4r + s4i * s4i) / s0);
	}
	out->ok = 1;

	if (colour && C->lab && isfinite(C->lab[3 * i])) {
		double ring[DESC_LBP_P];
		bool good = true;
		for (int p = 0; p < DESC_LBP_P && good; p++) {
			double th = 2 * M_PI * p / DESC_LBP_P;
			double qu = 0.5 * cos(th) * r0 / r, qv = 0.5 * sin(th) * r0 / r;
			double best = INFINITY, val_p = NAN;
			for (size_t j = 0; j < m; j++) {
				float L_j = g->lab[3 * j];
				if (!isfinite(L_j))
					continue;
				double du = S->u[j] - qu, dv = S->v[j] - qv;
				double dd = du * du + dv * dv;
				if (dd < best) {
					best = dd;
					val_p = L_j;
				}
			}
			if (!isfinite(val_p))
				good = false;
			ring[p] = val_p;
		}
		if (good)
			out->lbp = lbp_riu2(ring, (double)C->lab[3 * i]);
	}

	/* the S pass reuses the scratch: everything above is consumed */
	if (nbs && rs > 0)
		fit_band(nbs, src, C, i, rs, n, t1, t2, r, q, S, out);
}

int desc_fit_band(const struct desc_src *src, const struct desc_pts *centres,
		  const struct desc_nbhd *nbl, double rl, const struct desc_nbhd *nbs,
		  double rs, bool colour, struct desc_bfit *out, bool *sparse,
		  struct err *e)
{
	int nt = desc_threads(src), rc = 0;
	struct fit_scratch *S = alloc_array_zero((size_t)nt, sizeof(*S));
	if (!S)
		return err_set(e, ERR_NOMEM, "out of memory fitting");
	for (int t = 0; t < nt; t++) {
		if (scratch_alloc(&S[t]) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory fitting");
			goto out;
		}
	}
	size_t n = centres->n;
	bool col = colour && nbl->colour;
	#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
	for (size_t i = 0; i < n; i++)
		fit_centre(nbl, nbs, src, centres, i, rl, rs, col, &S[omp_get_thread_num()],
			   &out[i]);
	size_t widened = 0;
	for (size_t i = 0; i < n; i++)
		widened += out[i].widened;
	*sparse = nbl->sparse || (nbs && nbs->sparse) || widened * 4 > n;
out:
	for (int t = 0; t < nt; t++)
		scratch_release(&S[t]);
	xfree(S);
	return rc;
}

/*
 * Roughness below the resolution: the biweight RMS distance of the points
 * of a ball of radius r about their quadric height field, at every
 * stride-th centre whose ball is not cut by an edge.  Vertex noise puts
 * its own RMS here; a clean surface only the sag of its facets.
 */
static bool rough_centre(const struct desc_nbhd *nb, const struct desc_src *src,
			 const struct desc_pts *C, size_t i, double r,
			 struct fit_scratch *S, double *out)
{
	struct desc_gather *g = &S->g;
	const float *c = C->pos + 3 * i;
	uint32_t excl = C->id ? C->id[i] : UINT32_MAX;
	desc_nbhd_gather(nb, src, c, excl, i, r, g);
	size_t m = g->n;
	if (m < DESC_MIN_NB)
		return false;
	double sw = biweight(g, r, S->w);
	if (!(sw > 0))
		return false;
	double n[3], t1[3], t2[3], cu = 0, cv = 0;
	least_axis_of_ball(g, S->w, sw, n);
	tangents(n, t1, t2);
	for (size_t j = 0; j < m; j++) {
		const double *p = g->p + 3 * j;
		S->u[j] = (p[0] * t1[0] + p[1] * t1[1] + p[2] * t1[2]) / r;
		S->v[j] = (p[0] * t2[0] + p[1] * t2[1] + p[2] * t2[2]) / r;
		S->z[j] = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) / r;
		cu += S->w[j] * S->u[j];
		cv += S->w[j] * S->v[j];
	}
	if ((cu * cu + cv * cv) / (sw * sw) > 0.15 * 0.15)
		return false; /* an edge cuts the ball */
	double q[POLY_MAX];
	if (!fit_poly(S->u, S->v, S->z, S->w, m, 6, q))
		return false;
	double ss = 0;
	for (size_t j = 0; j < m; j++) {
		double dz = S->z[j] - poly_eval(q, S->u[j], S->v[j]);
		ss += S->w[j] * dz * dz;
	}
	*out = sqrt(ss / sw) * r;
	return true;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int desc_fit_roughness(const struct desc_src *src, const struct desc_pts *C,
		       const struct desc_nbhd *nb, double r, size_t max_centres,
		       double *out, struct err *e)
{
	*out = 0;
	size_t stride = C->n > max_centres ? (C->n + max_centres - 1) / max_centres : 1;
	size_t n = C->n ? (C->n - 1) / stride + 1 : 0;
	int nt = desc_threads(src), rc = 0;
	double *v = alloc_array(n ? n : 1, sizeof(*v));
	struct fit_scratch *S = alloc_array_zero((size_t)nt, sizeof(*S));
	if (!v || !S) {
		rc = err_set(e, ERR_NOMEM, "out of memory measuring roughness");
		goto out;
	}
	for (int t = 0; t < nt; t++) {
		if (scratch_alloc(&S[t]) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory measuring roughness");
			goto out;
		}
	}
	#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
	for (size_t k = 0; k < n; k++)
		if (!rough_centre(nb, src, C, k * stride, r, &S[omp_get_thread_num()], &v[k]))
			v[k] = NAN;
	size_t m = 0;
	for (size_t k = 0; k < n; k++)
		if (isfinite(v[k]))
			v[m++] = v[k];
	if (m) {
		qsort(v, m, sizeof(*v), cmp_dbl);
		*out = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
	}
out:
	for (int t = 0; S && t < nt; t++)
		scratch_release(&S[t]);
	xfree(S);
	xfree(v);
	return rc;
}
