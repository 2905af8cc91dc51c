/*
 * desc_shape.c - global shape block.
 *
 * Computed in the normalised frame (centroid at the origin, RMS radius
 * 1) from the area-uniform centre samples, so it is invariant to
 * translation and uniform scale; every part is rotation-invariant.
 *
 *  - D2, A3, D1 shape distributions (Osada, Funkhouser, Chazelle, Dobkin,
 *    "Shape distributions", ACM TOG 21(4), 2002): distances between
 *    random point pairs divided by their mean (32 bins over [0, 3]),
 *    angles of random triples (18 bins over [0, pi]) and distances to
 *    the centroid divided by their mean (16 bins over [0, 3]).
 *  - Spherical-harmonic energies of a voxel distance field (Kazhdan,
 *    Funkhouser, Rusinkiewicz, "Rotation invariant spherical harmonic
 *    representation of 3D shape descriptors", SGP 2003): the samples are
 *    voxelised on a 32^3 grid spanning [-2, 2]^3, the exact Euclidean
 *    distance transform (Felzenszwalb & Huttenlocher 2012) gives
 *    g = exp(-d^2 / (2 sigma^2)) (sigma = 1 voxel), and g restricted to
 *    16 concentric spheres (radii 1..16 voxels) is expanded in spherical
 *    harmonics up to degree 7; the energy sqrt(sum_m |c_lm|^2) of each
 *    degree on each sphere is rotation-invariant.  Gauss-Legendre
 *    quadrature (16 nodes in cos theta) x 32 longitudes.
 *  - PCA: sqrt(l2/l1), sqrt(l3/l1), sqrt(l3/l2) of the exact area
 *    covariance.
 *
 * Each histogram is a Hellinger vector (unit L2 norm); the SH energies
 * are scaled to unit norm; the block is the concatenation with weights
 * (see SUB_W) and has unit norm.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <string.h>

#include "../common/banned.h"

#define N_PAIRS 65536
#define GRID 32
#define SH_NTH 16
#define SH_NPH 32

/* Sub-block weights (squared-norm shares, sum 1). */
static const double SUB_W_D2 = 0.30, SUB_W_A3 = 0.20, SUB_W_D1 = 0.15,
		    SUB_W_SH = 0.30, SUB_W_PCA = 0.05;

static double pdist(const float *a, const float *b)
{
	double d[3] = { (double)a[0] - b[0], (double)a[1] - b[1], (double)a[2] - b[2] };
	return sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
}

static void vote(double *h, int nb, double x, double lo, double hi)
{
	double t = (x - lo) / (hi - lo) * nb - 0.5;
	if (t <= 0) {
		h[0] += 1;
		return;
	}
	if (t >= nb - 1) {
		h[nb - 1] += 1;
		return;
	}
	int i = (int)t;
	double f = t - i;
	h[i] += 1 - f;
	h[i + 1] += f;
}

static void to_float(const double *h, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (float)h[i];
}

void desc_d2_hist(const struct desc_pts *C, uint64_t seed, float *out)
{
	double *d = alloc_array(N_PAIRS, sizeof(double));
	double h[DESC_D2_BINS] = { 0 };
	size_t n = C->n;
	double sum = 0;
	if (!d || n < 2) {
		xfree(d);
		memset(out, 0, DESC_D2_BINS * sizeof(float));
		return;
	}
	for (size_t i = 0; i < N_PAIRS; i++) {
		uint64_t k = desc_hash(seed, DS_PAIRS, i);
		size_t a = (size_t)(k % n), b = (size_t)(desc_mix(k) % n);
		d[i] = pdist(C->pos + 3 * a, C->pos + 3 * b);
		sum += d[i];
	}
	double mean = sum / N_PAIRS;
	for (size_t i = 0; i < N_PAIRS; i++)
		vote(h, DESC_D2_BINS, mean > 0 ? d[i] / mean : 0, 0, 3);
	xfree(d);
	to_float(h, DESC_D2_BINS, out);
	desc_hellinger(out, DESC_D2_BINS);
}

static void a3_hist(const struct desc_pts *C, uint64_t seed, float *out)
{
	double h[DESC_A3_BINS] = { 0 };
	size_t n = C->n;
	for (size_t i = 0; i < N_PAIRS; i++) {
		uint64_t k = desc_hash(seed, DS_TRIPLES, i);
		const float *a = C->pos + 3 * (k % n);
		const float *b = C->pos + 3 * (desc_mix(k) % n);
		const float *c = C->pos + 3 * (desc_mix(k ^ 0x7f4a7c15ull) % n);
		double u[3], v[3];
		for (int j = 0; j < 3; j++) {
			u[j] = (double)a[j] - b[j];
			v[j] = (double)c[j] - b[j];
		}
		double lu = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
		double lv = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
		if (!(lu > 0) || !(lv > 0))
			continue;
		double cs = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (lu * lv);
		cs = cs > 1 ? 1 : cs < -1 ? -1 : cs;
		vote(h, DESC_A3_BINS, acos(cs), 0, M_PI);
	}
	to_float(h, DESC_A3_BINS, out);
	desc_hellinger(out, DESC_A3_BINS);
}

static void d1_hist(const struct desc_pts *C, float *out)
{
	double h[DESC_D1_BINS] = { 0 }, sum = 0;
	for (size_t i = 0; i < C->n; i++) {
		const float *p = C->pos + 3 * i;
		sum += sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
	}
	double mean = C->n ? sum / (double)C->n : 0;
	for (size_t i = 0; i < C->n; i++) {
		const float *p = C->pos + 3 * i;
		double r = sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
		vote(h, DESC_D1_BINS, mean > 0 ? r / mean : 0, 0, 3);
	}
	to_float(h, DESC_D1_BINS, out);
	desc_hellinger(out, DESC_D1_BINS);
}

/*
 * 1D squared distance transform of f (Felzenszwalb & Huttenlocher,
 * "Distance transforms of sampled functions", ToC 8, 2012): the lower
 * envelope of the parabolas (q - p)^2 + f(p).
 */
static void edt1(const double *f, double *d, int n, int *v, double *z)
{
	int k = 0;
	v[0] = 0;
	z[0] = -INFINITY;
	z[1] = INFINITY;
	for (int q = 1; q < n; q++) {
		double s;
		for (;;) {
			int p = v[k];
			s = ((f[q] + (double)q * q) - (f[p] + (double)p * p)) / (2.0 * (q - p));
			if (s > z[k])
				break;
			k--;
		}
		k++;
		v[k] = q;
		z[k] = s;
		z[k + 1] = INFINITY;
	}
	k = 0;
	for (int q = 0; q < n; q++) {
		while (z[k + 1] < q)
			k++;
		double dq = (double)q - v[k];
		d[q] = dq * dq + f[v[k]];
	}
}

static void edt3(double *g)
{
	double f[GRID], d[GRID], z[GRID + 1];
	int v[GRID];
	for (int axis = 0; axis < 3; axis++) {
		for (int a = 0; a < GRID; a++)
			for (int b = 0; b < GRID; b++) {
				size_t idx[GRID];
				for (int i = 0; i < GRID; i++) {
					int x = axis == 0 ? i : a, y = axis == 1 ? i : (axis == 0 ? a : b);
					int zz = axis == 2 ? i : b;
					idx[i] = ((size_t)x * GRID + (size_t)y) * GRID + (size_t)zz;
					f[i] = g[idx[i]];
				}
				edt1(f, d, GRID, v, z);
				for (int i = 0; i < GRID; i++)
					g[idx[i]] = d[i];
			}
	}
}

static double trilinear(const double *g, double x, double y, double z)
{
	if (x < 0)
		x = 0;
	if (y < 0)
		y = 0;
	if (z < 0)
		z = 0;
	double m = GRID - 1.000001;
	if (x > m)
		x = m;
	if (y > m)
		y = m;
	if (z > m)
		z = m;
	int i = (int)x, j = (int)y, k = (int)z;
	double fx = x - i, fy = y - j, fz = z - k;
	double s = 0;
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++)
			for (int c = 0; c < 2; c++) {
				double w = (a ? fx : 1 - fx) * (b ? fy : 1 - fy) * (c ? fz : 1 - fz);
				s += w * g[((size_t)(i + a) * GRID + (size_t)(j + b)) * GRID + (size_t)(k + c)];
			}
	return s;
}

/* Gauss-Legendre nodes and weights on [-1, 1] by Newton iteration. */
static void gauss_legendre(int n, double *x, double *w)
{
	for (int i = 0; i < n; i++) {
		double t = cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 0;
		for (int it = 0; it < 100; it++) {
			double p0 = 1, p1 = t;
			for (int k = 2; k <= n; k++) {
				double p2 = ((2 * k - 1) * t * p1 - (k - 1) * p0) / k;
				p0 = p1;
				p1 = p2;
			}
			dp = n * (t * p1 - p0) / (t * t - 1);
			double dt = p1 / dp;
			t -= dt;
			if (fabs(dt) < 1e-15)
				break;
		}
		x[i] = t;
		w[i] = 2 / ((1 - t * t) * dp * dp);
	}
}

/* Orthonormal associated Legendre N_lm P_lm(x), l < L, 0 <= m <= l. */
static void legendre(double x, double P[DESC_SH_DEGREES][DESC_SH_DEGREES])
{
	const int L = DESC_SH_DEGREES;
	double s = sqrt(fmax(0, 1 - x * x));
	/* P_mm with normalisation sqrt((2m+1)/(4pi) / (2m)!) folded in */
	double pmm = sqrt(1.0 / (4 * M_PI));
	for (int m = 0; m < L; m++) {
		if (m > 0)
			pmm *= -s * sqrt((2.0 * m + 1) / (2.0 * m));
		P[m][m] = pmm;
		if (m + 1 < L)
			P[m + 1][m] = x * sqrt(2.0 * m + 3) * pmm;
		for (int l = m + 2; l < L; l++) {
			double a = sqrt((4.0 * l * l - 1) / ((double)l * l - (double)m * m));
			double b = sqrt(((l - 1.0) * (l - 1.0) - (double)m * m) /
					(4.0 * (l - 1.0) * (l - 1.0) - 1));
			P[l][m] = a * (x * P[l - 1][m] - b * P[l - 2][m]);
		}
	}
}

static int sh_energies(const struct desc_pts *C, float *out, struct err *e)
{
	const size_t G3 = (size_t)GRID * GRID * GRID;
	double *g = alloc_array(G3, sizeof(double));
	if (!g)
		return err_set(e, ERR_NOMEM, "out of memory for the distance field");
	const double big = 1e30, half = GRID / 2.0, vox = GRID / 4.0; /* voxels per unit */
	for (size_t i = 0; i < G3; i++)
		g[i] = big;
	for (size_t i = 0; i < C->n; i++) {
		int c[3];
		for (int k = 0; k < 3; k++) {
			double x = C->pos[3 * i + k] * vox + half;
			int v = (int)floor(x);
			c[k] = v < 0 ? 0 : v >= GRID ? GRID - 1 : v;
		}
		g[((size_t)c[0] * GRID + (size_t)c[1]) * GRID + (size_t)c[2]] = 0;
	}
	edt3(g);
	for (size_t i = 0; i < G3; i++)
		g[i] = exp(-g[i] / 2.0);

	double xs[SH_NTH], ws[SH_NTH];
	gauss_legendre(SH_NTH, xs, ws);
	double en[DESC_SH_SHELLS * DESC_SH_DEGREES];
	for (int sh = 0; sh < DESC_SH_SHELLS; sh++) {
		double rad = sh + 1.0; /* voxels */
		double cr[DESC_SH_DEGREES][DESC_SH_DEGREES], ci[DESC_SH_DEGREES][DESC_SH_DEGREES];
		memset(cr, 0, sizeof(cr));
		memset(ci, 0, sizeof(ci));
		for (int it = 0; it < SH_NTH; it++) {
			double ct = xs[it], st = sqrt(fmax(0, 1 - ct * ct));
			double am_r[DESC_SH_DEGREES] = { 0 }, am_i[DESC_SH_DEGREES] = { 0 };
			for (int ip = 0; ip < SH_NPH; ip++) {
				double ph = 2 * M_PI * ip / SH_NPH;
				double x = half - 0.5 + rad * st * cos(ph);
				double y = half - 0.5 + rad * st * sin(ph);
				double z = half - 0.5 + rad * ct;
				double val = trilinear(g, x, y, z);
				for (int m = 0; m < DESC_SH_DEGREES; m++) {
					am_r[m] += val * cos(m * ph);
					am_i[m] -= val * sin(m * ph);
				}
			}
			double P[DESC_SH_DEGREES][DESC_SH_DEGREES];
			legendre(ct, P);
			double dphi = 2 * M_PI / SH_NPH;
			for (int l = 0; l < DESC_SH_DEGREES; l++)
				for (int m = 0; m <= l; m++) {
					cr[l][m] += ws[it] * dphi * P[l][m] * am_r[m];
					ci[l][m] += ws[it] * dphi * P[l][m] * am_i[m];
				}
		}
		for (int l = 0; l < DESC_SH_DEGREES; l++) {
			double s = cr[l][0] * cr[l][0];
			for (int m = 1; m <= l; m++)
				s += 2 * (cr[l][m] * cr[l][m] + ci[l][m] * ci[l][m]);
			en[sh * DESC_SH_DEGREES + l] = sqrt(s);
		}
	}
	xfree(g);
	double norm = 0;
	for (int i = 0; i < DESC_SH_SHELLS * DESC_SH_DEGREES; i++)
		norm += en[i] * en[i];
	norm = sqrt(norm);
	for (int i = 0; i < DESC_SH_SHELLS * DESC_SH_DEGREES; i++)
		out[i] = norm > 0 ? (float)(en[i] / norm) : 0;
	return 0;
}

static void scale_sub(float *v, size_t n, double w)
{
	double s = sqrt(w);
	for (size_t i = 0; i < n; i++)
		v[i] = (float)(v[i] * s);
}

int desc_shape_block(const struct desc_src *src, const struct desc_pts *C,
		     float *out, struct err *e)
{
	float *d2 = out, *a3 = d2 + DESC_D2_BINS, *d1 = a3 + DESC_A3_BINS;
	float *sh = d1 + DESC_D1_BINS, *pca = sh + DESC_SH_SHELLS * DESC_SH_DEGREES;
	desc_d2_hist(C, src->seed, d2);
	a3_hist(C, src->seed, a3);
	d1_hist(C, d1);
	int rc = sh_energies(C, sh, e);
	if (rc < 0)
		return rc;
	double val[3], vec[3][3];
	desc_eig3(src->cov, val, vec);
	double l1 = fmax(val[2], 0), l2 = fmax(val[1], 0), l3 = fmax(val[0], 0);
	pca[0] = l1 > 0 ? (float)sqrt(l2 / l1) : 0;
	pca[1] = l1 > 0 ? (float)sqrt(l3 / l1) : 0;
	pca[2] = l2 > 0 ? (float)sqrt(l3 / l2) : 0;
	/* PCA ratios are at most 1 each: scale to at most unit norm */
	for (int k = 0; k < 3; k++)
		pca[k] = (float)(pca[k] / sqrt(3.0));
	scale_sub(d2, DESC_D2_BINS, SUB_W_D2);
	scale_sub(a3, DESC_A3_BINS, SUB_W_A3);
	scale_sub(d1, DESC_D1_BINS, SUB_W_D1);
	scale_sub(sh, DESC_SH_SHELLS * DESC_SH_DEGREES, SUB_W_SH);
	scale_sub(pca, DESC_PCA_LEN, SUB_W_PCA);
	return 0;
}
