/*
 * desc_fit.c - local surface fits at a centre: the geometry under the
 * local-geometry and relief blocks and the colour rings of the LBP.
 *
 * At a centre c and radius r the points of the ball get biweight
 * weights w = (1 - d^2/r^2)^2.  Their weighted covariance gives the local
 * frame (normal = least eigenvector, oriented by the neighbours' surface
 * normals, else away from the centroid).  A height field
 *     z = a u^2 + b uv + c v^2 + d u + e v + f     (u, v, z in units of r)
 * is fitted by weighted least squares, the "smoothed surface at scale r"
 * (a local MLS quadric, Levin 2003; Cazals & Pouget 2005 for curvature
 * from osculating jets).  From it:
 *   - principal curvatures k1 >= k2 at the centre from the first and
 *     second fundamental forms of the quadric (convex = positive);
 *   - the centre's residual height h = -f (the centre is not in its own
 *     ball: a leave-one-out residual);
 *   - the slope of the residual field: a plane fitted to the neighbours'
 *     residuals within r/2, |grad|^2 (for Sdr);
 *   - anisotropy: with D_j = (e_j - h)/rho_j the residual difference
 *     towards neighbour j at tangent angle phi_j,
 *     a_n = |sum w D^2 exp(i n phi)| / sum w D^2 for n = 2, 4 (a
 *     directional variogram's 2- and 4-fold harmonics; rotation-free).
 *   - with colour, the rotation-invariant uniform LBP code (Ojala et al.
 *     2002) of P = 8 points on the circle of radius r/2 in the tangent
 *     plane, each taking the lightness of the nearest neighbour.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <omp.h>
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
static bool fit_poly(const double *u, const double *v, const double *z,
		     const double *w, size_t m, int n, double coef[6])
{
	double A[36] = { 0 }, b[6] = { 0 };
	for (size_t j = 0; j < m; j++) {
		if (w[j] <= 0)
			continue;
		double x[6] = { 1, u[j], v[j], u[j] * u[j], u[j] * v[j], v[j] * v[j] };
		for (int p = 0; p < n; p++) {
			double wx = w[j] * x[p];
			b[p] += wx * z[j];
			for (int q = 0; q <= p; q++)
				A[p * n + q] += wx * x[q];
		}
	}
	for (int p = 0; p < n; p++)
		for (int q = p + 1; q < n; q++)
			A[p * n + q] = A[q * n + p];
	if (!solve_spd(A, b, n))
		return false;
	for (int p = 0; p < 6; p++)
		coef[p] = p < n ? b[p] : 0;
	return true;
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

static void fit_centre(const struct desc_nbhd *nb, const struct desc_src *src,
		       const struct desc_pts *C, size_t i, double r0, double lag_min,
		       bool colour, struct fit_scratch *S, struct desc_cfit *out)
{
	memset(out, 0, sizeof(*out));
	out->lbp = 255;
	const float *c = C->pos + 3 * i;
	uint32_t excl = C->id ? C->id[i] : UINT32_MAX;
	double r = r0;
	struct desc_gather *g = &S->g;
	for (int tries = 0; tries < 3; tries++) {
		desc_nbhd_gather(nb, src, c, excl, i, r, g);
		if (g->n >= DESC_MIN_NB)
			break;
		r *= 2;
		out->widened = 1;
	}
	size_t m = g->n;
	if (m < DESC_MIN_NB)
		return;
	double inv_r2 = 1.0 / (r * r);
	double sw = 0, mean[3] = { 0, 0, 0 };
	for (size_t j = 0; j < m; j++) {
		const double *p = g->p + 3 * j;
		double t = 1 - (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]) * inv_r2;
		double w = t > 0 ? t * t : 0;
		S->w[j] = w;
		sw += w;
		for (int k = 0; k < 3; k++)
			mean[k] += w * p[k];
	}
	if (!(sw > 0))
		return;
	for (int k = 0; k < 3; k++)
		mean[k] /= sw;
	double cov[6] = { 0 };
	for (size_t j = 0; j < m; j++) {
		const double *p = g->p + 3 * j;
		double d[3] = { p[0] - mean[0], p[1] - mean[1], p[2] - mean[2] };
		double w = S->w[j];
		cov[0] += w * d[0] * d[0];
		cov[1] += w * d[0] * d[1];
		cov[2] += w * d[0] * d[2];
		cov[3] += w * d[1] * d[1];
		cov[4] += w * d[1] * d[2];
		cov[5] += w * d[2] * d[2];
	}
	double val[3], vec[3][3];
	desc_eig3(cov, val, vec);
	double n[3] = { vec[0][0], vec[0][1], vec[0][2] };
	double t1[3] = { vec[2][0], vec[2][1], vec[2][2] };
	/* orientation: surface normals of the ball, else away from the centroid */
	double ref[3] = { C->nrm[3 * i], C->nrm[3 * i + 1], C->nrm[3 * i + 2] };
	for (size_t j = 0; j < m; j++)
		for (int k = 0; k < 3; k++)
			ref[k] += S->w[j] * (double)g->nrm[3 * j + k];
	double rl = ref[0] * ref[0] + ref[1] * ref[1] + ref[2] * ref[2];
	if (!(rl > 1e-12)) {
		for (int k = 0; k < 3; k++)
			ref[k] = c[k];
	}
	if (n[0] * ref[0] + n[1] * ref[1] + n[2] * ref[2] < 0)
		for (int k = 0; k < 3; k++)
			n[k] = -n[k];
	double t2[3] = { n[1] * t1[2] - n[2] * t1[1], n[2] * t1[0] - n[0] * t1[2],
			 n[0] * t1[1] - n[1] * t1[0] };
	double inv_r = 1.0 / r;
	for (size_t j = 0; j < m; j++) {
		const double *p = g->p + 3 * j;
		S->u[j] = (p[0] * t1[0] + p[1] * t1[1] + p[2] * t1[2]) * inv_r;
		S->v[j] = (p[0] * t2[0] + p[1] * t2[1] + p[2] * t2[2]) * inv_r;
		S->z[j] = (p[0] * n[0] + p[1] * n[1] + p[2] * n[2]) * inv_r;
	}
	double q[6];
	bool quad = fit_poly(S->u, S->v, S->z, S->w, m, 6, q);
	if (!quad && !fit_poly(S->u, S->v, S->z, S->w, m, 3, q))
		return;
	/* q = [f, d, e, a, b, c]: z = f + d u + e v + a u^2 + b uv + c v^2 */
	double f = q[0], d = q[1], ee = q[2], A = q[3], B = q[4], Cq = q[5];
	double E = 1 + d * d, F = d * ee, G = 1 + ee * ee;
	double nn = sqrt(1 + d * d + ee * ee);
	double L = 2 * A / nn, M = B / nn, N = 2 * Cq / nn;
	double det = E * G - F * F;
	double K = (L * N - M * M) / det;
	double H = (E * N - 2 * F * M + G * L) / (2 * det);
	double Hc = -H; /* convex (surface bending away from the normal) positive */
	double disc = Hc * Hc - K;
	double sq = disc > 0 ? sqrt(disc) : 0;
	double rs = r0 / r; /* curvatures in units of the nominal radius */
	out->k1 = (float)((Hc + sq) * rs);
	out->k2 = (float)((Hc - sq) * rs);
	double hc = -f;
	out->h = (float)(hc * r);
	double gn[3], gl = 0;
	for (int k = 0; k < 3; k++) {
		gn[k] = n[k] - d * t1[k] - ee * t2[k];
		gl += gn[k] * gn[k];
	}
	gl = sqrt(gl);
	for (int k = 0; k < 3; k++)
		out->n[k] = (float)(gn[k] / gl);
	double lag2 = lag_min / r;
	lag2 *= lag2;

	/* anisotropy of the residual differences */
	double s0 = 0, s2r = 0, s2i = 0, s4r = 0, s4i = 0;
	for (size_t j = 0; j < m; j++) {
		double u = S->u[j], v = S->v[j];
		double zq = f + d * u + ee * v + A * u * u + B * u * v + Cq * v * v;
		double ej = S->z[j] - zq;
		double rho2 = u * u + v * v;
		if (rho2 >= lag2 && rho2 > 1e-12) {
			/* squared residual difference at lag rho in direction phi */
			double wd = S->w[j] * (ej - hc) * (ej - hc);
			double c2 = (u * u - v * v) / rho2, si2 = 2 * u * v / rho2;
			s0 += wd;
			s2r += wd * c2;
			s2i += wd * si2;
			s4r += wd * (c2 * c2 - si2 * si2);
			s4i += wd * (2 * c2 * si2);
		}
	}
	if (s0 > 0) {
		out->a2 = (float)(sqrt(s2r * s2r + s2i * s2i) / s0);
		out->a4 = (float)(sqrt(s4r * s4r + s4i * s4i) / s0);
	}
	out->ok = 1;

	if (colour && C->lab && isfinite(C->lab[3 * i])) {
		double ring[DESC_LBP_P];
		bool good = true;
		for (int p = 0; p < DESC_LBP_P && good; p++) {
			double th = 2 * M_PI * p / DESC_LBP_P;
			double qu = 0.5 * cos(th) * r0 / r, qv = 0.5 * sin(th) * r0 / r;
			double best = INFINITY;
			double val_p = NAN;
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
}

int desc_fit_scale(const struct desc_src *src, const struct desc_pts *centres,
		   double r, double lag_min, uint64_t stream, bool colour,
		   struct desc_cfit *out, bool *sparse, struct err *e)
{
	struct desc_nbhd nb;
	int rc = desc_nbhd_init(&nb, src, r, stream, colour, e);
	if (rc < 0)
		return rc;
	int nt = desc_threads(src);
	struct fit_scratch *S = alloc_array_zero((size_t)nt, sizeof(*S));
	if (!S) {
		desc_nbhd_release(&nb);
		return err_set(e, ERR_NOMEM, "out of memory fitting");
	}
	for (int t = 0; t < nt; t++) {
		if (scratch_alloc(&S[t]) < 0) {
			rc = err_set(e, ERR_NOMEM, "out of memory fitting");
			goto out;
		}
	}
	size_t n = centres->n;
	bool col = colour && nb.colour;
	#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
	for (size_t i = 0; i < n; i++)
		fit_centre(&nb, src, centres, i, r, lag_min, col,
			   &S[omp_get_thread_num()], &out[i]);
	size_t widened = 0;
	for (size_t i = 0; i < n; i++)
		widened += out[i].widened;
	*sparse = nb.sparse || widened * 4 > n;
out:
	for (int t = 0; t < nt; t++)
		scratch_release(&S[t]);
	xfree(S);
	desc_nbhd_release(&nb);
	return rc;
}
