/*
 * desc_relief.c - local-geometry histograms and relief statistics from
 * the per-centre fits of desc_fit.c.
 *
 * Local geometry (Koenderink & van Doorn, "Surface shape and curvature
 * scales", Image Vision Comput. 10(8), 1992): shape index
 * S = (2/pi) atan2(k1 + k2, k1 - k2) in [-1, 1] (cup -1, saddle 0, cap 1)
 * and curvedness C = sqrt((k1^2 + k2^2) / 2), here times the radius of
 * the scale (dimensionless).  2D histogram: 9 bins of S x 6 bins of
 * log2(C r) centred at -7, -5.5, ..., 0.5, bilinear votes, Hellinger.
 * Near-flat points (C r < 2^-6) vote less and less for their shape
 * index, which rounding decides, and more for all of them evenly.
 *
 * Relief (ISO 25178-2 areal parameters of the scale-limited surface: h
 * is the band height of each centre, the S-filtered residual above the L
 * form, in units of the L radius): Sa = mean|h|, Sq = sqrt(mean h^2),
 * Ssk = mean h^3/Sq^3, Sku = mean h^4/Sq^4, Sdr = mean(sqrt(1 +
 * |grad h|^2) - 1), the robust sigma 1.4826 median|h|, the energy-
 * weighted ridge-ness of the band's Hessian, the 4-fold variogram
 * harmonic, and a 16-bin histogram of h / Sq over [-3, 3] (Hellinger).
 * Balls cut by the surface's edge are left out.  The eight statistics are
 * mapped to about [-1, 1] and clamped to [-2, 2]:
 *   [log10(sigma) + 2.5] / 1.5, (Sa/Sq - 0.75) / 0.15, tanh(Ssk / 2),
 *   tanh(ln(Sku / 3)), [log10(Sdr) + 3] / 2, (ridge - 0.4) / 0.3,
 *   (4-fold - 0.3) / 0.2, (sigma/Sq - 0.8) / 0.3.
 * Per band the statistics carry 0.6 and the histogram 0.4 of the squared
 * norm.  A band with no measurable relief (sigma below 1e-4) takes the
 * values of a zero-amplitude Gaussian field; the shape statistics fade
 * to those between sigma = 1e-3 and 1e-4, where the shape of the field
 * is that of tessellation and rounding.
 */
#include "desc_int.h"
#include "../common/alloc.h"
#include "../common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/banned.h"

#define STAT_W 0.6
#define HIST_W 0.4
#define SQ_FLOOR 1e-4   /* Sq / r below this is not measured */
#define SDR_FLOOR 1e-5

/* Linear (tent) vote of x over nb bins centred at lo, lo + step, ...; a
 * value below the first centre (or NaN) votes for the first bin. */
void desc_tent(double x, double lo, double step, int nb, int idx[2], double w[2])
{
	double t = (x - lo) / step;
	if (!(t > 0)) {
		idx[0] = idx[1] = 0;
		w[0] = 1;
		w[1] = 0;
		return;
	}
	if (t >= nb - 1) {
		idx[0] = idx[1] = nb - 1;
		w[0] = 1;
		w[1] = 0;
		return;
	}
	int i = (int)t;
	idx[0] = i;
	idx[1] = i + 1;
	w[1] = t - i;
	w[0] = 1 - w[1];
}

void desc_local_hist(const struct desc_bfit *f, size_t n, float *out)
{
	double h[DESC_SI_BINS * DESC_CV_BINS];
	memset(h, 0, sizeof(h));
	for (size_t i = 0; i < n; i++) {
		if (!f[i].ok || f[i].border)
			continue;
		double k1 = f[i].k1, k2 = f[i].k2;
		double si = (2 / M_PI) * atan2(k1 + k2, k1 - k2);
		double cv = sqrt(0.5 * (k1 * k1 + k2 * k2));
		double lc = cv > 0 ? log2(cv) : -100;
		int is[2], ic[2];
		double ws[2], wc[2];
		desc_tent(si, -1, 0.25, DESC_SI_BINS, is, ws);
		desc_tent(lc, -7, 1.5, DESC_CV_BINS, ic, wc);
		/*
		 * The shape index of a (nearly) flat point is rounding noise:
		 * below C r = 2^-8 its vote is spread evenly over the shape
		 * index bins, fading in up to 2^-6.
		 */
		double g = fmin(1.0, fmax(0.0, (lc + 8) / 2));
		for (int a = 0; a < 2; a++)
			for (int b = 0; b < 2; b++)
				h[is[a] * DESC_CV_BINS + ic[b]] += g * ws[a] * wc[b];
		for (int a = 0; a < DESC_SI_BINS && g < 1; a++)
			for (int b = 0; b < 2; b++)
				h[a * DESC_CV_BINS + ic[b]] += (1 - g) * wc[b] / DESC_SI_BINS;
	}
	for (int i = 0; i < DESC_SI_BINS * DESC_CV_BINS; i++)
		out[i] = (float)h[i];
	desc_hellinger(out, DESC_SI_BINS * DESC_CV_BINS);
}

/*
 * Point pair features (Drost, Ulrich, Navab, Ilic 2010), unsigned and
 * local: for every two fit centres closer than rp, their distance / rp,
 * |n1.n2|, and the larger and the smaller of |n1.u| and |n2.u| (u the
 * unit vector from one to the other), DESC_PAIR_NB bins each; Hellinger.
 * Unsigned, so that a guessed orientation does not matter; local, so that
 * what a crop keeps keeps its pairs.  The centres are swept in x order, so
 * only those within rp in x are compared.  The counts are integers, so the
 * sum over threads is exact and the result does not depend on their
 * number.  Returns 0 or ERR_NOMEM.
 */
struct pair_key {
	float x;
	uint32_t i;
};

static int cmp_pair_key(const void *a, const void *b)
{
	const struct pair_key *p = a, *q = b;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

int desc_pair_hist(const struct desc_pts *C, const struct desc_bfit *f, double rp,
		   int threads, float *out)
{
	enum { NB = DESC_PAIR_NB, NH = DESC_PAIR_BINS };
	double h[NH];
	memset(h, 0, sizeof(h));
	/* the usable centres swept along x: only those within rp in x pair */
	struct pair_key *key = alloc_array(C->n ? C->n : 1, sizeof(*key));
	if (!key)
		return ERR_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < C->n; i++)
		if (f[i].ok)
			key[n++] = (struct pair_key){ C->pos[3 * i], (uint32_t)i };
	qsort(key, n, sizeof(*key), cmp_pair_key);
	double rp2 = rp * rp;
	#pragma omp parallel num_threads(threads)
	{
		double loc[NH];
		memset(loc, 0, sizeof(loc));
		#pragma omp for schedule(dynamic, 64)
		for (size_t s = 0; s < n; s++) {
			size_t i = key[s].i;
			const float *p = C->pos + 3 * i, *a = f[i].nrm;
			for (size_t t = s + 1; t < n && key[t].x - key[s].x < rp; t++) {
				size_t j = key[t].i;
				const float *q = C->pos + 3 * j, *b = f[j].nrm;
				double d[3] = { q[0] - p[0], q[1] - p[1], q[2] - p[2] };
				double d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
				if (!(d2 < rp2) || !(d2 > 0))
					continue;
				double dl = sqrt(d2);
				double ab = fabs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]);
				double au = fabs(a[0] * d[0] + a[1] * d[1] + a[2] * d[2]) / dl;
				double bu = fabs(b[0] * d[0] + b[1] * d[1] + b[2] * d[2]) / dl;
				int ix[4] = { (int)(dl / rp * NB), (int)(ab * NB), (int)(fmax(au, bu) * NB),
					      (int)(fmin(au, bu) * NB) };
				int k = 0;
				for (int c = 0; c < 4; c++)
					k = k * NB + (ix[c] < NB ? ix[c] : NB - 1);
				loc[k] += 1;
			}
		}
		#pragma omp critical
		for (int k = 0; k < NH; k++)
			h[k] += loc[k];
	}
	xfree(key);
	double sum = 0;
	for (int k = 0; k < NH; k++)
		sum += h[k];
	for (int k = 0; k < NH; k++)
		out[k] = (float)(sum > 0 ? h[k] / sum : 0);
	desc_hellinger(out, NH);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double clamp2(double x)
{
	if (!isfinite(x))
		return 0;
	return x < -2 ? -2 : x > 2 ? 2 : x;
}

void desc_band_measure(const struct desc_bfit *f, size_t n, double r,
		       struct desc_band_raw *b)
{
	double s1 = 0, s2 = 0, s3 = 0, s4 = 0, sdr = 0, a4 = 0, rw = 0, rs = 0;
	size_t m = 0;
	memset(b, 0, sizeof(*b));
	double *hv = f ? alloc_array(n ? n : 1, sizeof(double)) : NULL;
	double *absh = f ? alloc_array(n ? n : 1, sizeof(double)) : NULL;
	for (size_t i = 0; f && hv && absh && i < n; i++) {
		if (!f[i].ok || !f[i].sok || f[i].border)
			continue;
		double h = (double)f[i].hb / r;
		s1 += fabs(h);
		s2 += h * h;
		s3 += h * h * h;
		s4 += h * h * h * h;
		sdr += sqrt(1 + (double)f[i].g2) - 1;
		a4 += f[i].a4;
		rw += f[i].re;
		rs += (double)f[i].re * f[i].rq;
		hv[m] = h;
		absh[m] = fabs(h);
		m++;
	}
	b->m = m;
	if (m) {
		double mm = (double)m;
		b->sa = s1 / mm;
		b->sq = sqrt(s2 / mm);
		b->sdr = sdr / mm;
		b->ridge = rw > 0 ? rs / rw : 0;
		b->a4 = a4 / mm;
		if (b->sq > 0) {
			double q = b->sq;
			b->ssk = (s3 / mm) / (q * q * q);
			b->sku = (s4 / mm) / (q * q * q * q);
			qsort(absh, m, sizeof(double), cmp_double);
			double med = m % 2 ? absh[m / 2] : 0.5 * (absh[m / 2 - 1] + absh[m / 2]);
			b->robust = 1.4826 * med / q;
			for (size_t i = 0; i < m; i++) {
				int ix[2];
				double w[2];
				desc_tent(hv[i] / q, -3 + 3.0 / DESC_RELIEF_HIST, 6.0 / DESC_RELIEF_HIST,
				     DESC_RELIEF_HIST, ix, w);
				b->hist[ix[0]] += w[0] / mm;
				b->hist[ix[1]] += w[1] / mm;
			}
		}
	}
	xfree(hv);
	xfree(absh);
}

void desc_band_features(const struct desc_band_raw *b, float *out)
{
	float *st = out, *hist = out + DESC_RELIEF_STATS;
	double feat[DESC_RELIEF_STATS];
	double hh[DESC_RELIEF_HIST];
	/* a zero-amplitude Gaussian field: the values of "no relief" */
	const double neutral[DESC_RELIEF_STATS] = {
		0, (0.7979 - 0.75) / 0.15, 0, 0, 0, 0, 0, (1.0 - 0.8) / 0.3
	};
	/* amplitude: the robust sigma, which a few form edges do not inflate */
	double sig = b->robust * b->sq;
	feat[0] = (log10(fmax(sig, SQ_FLOOR)) + 2.5) / 1.5;
	feat[4] = (log10(fmax(b->sdr, SDR_FLOOR)) + 3) / 2;
	if (b->m && b->sq > 0) {
		feat[1] = (b->sa / b->sq - 0.75) / 0.15;
		feat[2] = tanh(b->ssk / 2);
		feat[3] = tanh(log(fmax(b->sku, 1e-9) / 3));
		feat[5] = (b->ridge - 0.4) / 0.3;
		feat[6] = (b->a4 - 0.3) / 0.2;
		feat[7] = (b->robust - 0.8) / 0.3;
	} else {
		for (int k = 0; k < DESC_RELIEF_STATS; k++)
			if (k != 0 && k != 4)
				feat[k] = neutral[k];
	}
	/*
	 * The shape of a residual field a ten-thousandth of the radius high
	 * is the shape of tessellation and rounding, not of relief: fade the
	 * shape statistics and the histogram to neutral between Sq/r = 1e-4
	 * and 1e-3.
	 */
	double beta = b->m ? fmin(1.0, fmax(0.0, log10(fmax(sig, 1e-12)) + 4)) : 0;
	for (int k = 1; k < DESC_RELIEF_STATS; k++)
		if (k != 4)
			feat[k] = beta * feat[k] + (1 - beta) * neutral[k];
	for (int k = 0; k < DESC_RELIEF_HIST; k++) {
		double nk = (k == DESC_RELIEF_HIST / 2 - 1 || k == DESC_RELIEF_HIST / 2) ? 0.5 : 0;
		hh[k] = beta * b->hist[k] + (1 - beta) * nk;
	}
	double ws = sqrt(STAT_W / DESC_RELIEF_STATS);
	for (int k = 0; k < DESC_RELIEF_STATS; k++)
		st[k] = (float)(clamp2(feat[k]) * ws);
	for (int k = 0; k < DESC_RELIEF_HIST; k++)
		hist[k] = (float)hh[k];
	desc_hellinger(hist, DESC_RELIEF_HIST);
	double wh = sqrt(HIST_W);
	for (int k = 0; k < DESC_RELIEF_HIST; k++)
		hist[k] = (float)(hist[k] * wh);
}
