/*
 * raster.c - depth-buffered triangles (raster.h).
 */
#include "raster.h"

#include <math.h>

#include "banned.h"

void raster_triangle(const double u[3], const double v[3], const double z[3], size_t w,
		     size_t h, float *depth, float *attr, float value)
{
	double det = (u[1] - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (v[1] - v[0]);
	if (!(fabs(det) > 1e-12))
		return; /* seen edge-on: covers no area */
	double ulo = fmin(u[0], fmin(u[1], u[2])), uhi = fmax(u[0], fmax(u[1], u[2]));
	double vlo = fmin(v[0], fmin(v[1], v[2])), vhi = fmax(v[0], fmax(v[1], v[2]));
	if (!(uhi >= 0 && vhi >= 0 && ulo <= (double)w && vlo <= (double)h))
		return; /* outside (or not finite) */
	long i0 = (long)ceil(fmax(ulo, 0) - 0.5), i1 = (long)floor(fmin(uhi, (double)w) - 0.5);
	long j0 = (long)ceil(fmax(vlo, 0) - 0.5), j1 = (long)floor(fmin(vhi, (double)h) - 0.5);
	for (long j = j0; j <= j1; j++)
		for (long i = i0; i <= i1; i++) {
			double cu = (double)i + 0.5, cv = (double)j + 0.5;
			double l1 = ((cu - u[0]) * (v[2] - v[0]) - (u[2] - u[0]) * (cv - v[0])) / det;
			double l2 = ((u[1] - u[0]) * (cv - v[0]) - (cu - u[0]) * (v[1] - v[0])) / det;
			double l0 = 1 - l1 - l2;
			if (l0 < 0 || l1 < 0 || l2 < 0)
				continue;
			float d = (float)(l0 * z[0] + l1 * z[1] + l2 * z[2]);
			size_t at = (size_t)j * w + (size_t)i;
			if (d < depth[at]) {
				depth[at] = d;
				if (attr)
					attr[at] = value;
			}
		}
}
