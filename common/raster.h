/*
 * raster.h - depth-buffered triangles, shared by the views' visibility
 * (indexer/desc_view.c) and the contact sheet's drawings (query/sheet.c).
 */
#ifndef REFSCAN_RASTER_H
#define REFSCAN_RASTER_H

#include <stddef.h>

/*
 * Rasterise the triangle with corners (u[k], v[k]) in pixels and depths
 * z[k] into a w x h buffer: at every pixel centre (i + 0.5, j + 0.5) it
 * covers (edges included) where the interpolated depth is below
 * depth[j * w + i], store that depth and, when attr is not NULL, set
 * attr[j * w + i] = value.  Parts outside the buffer are clipped; a
 * triangle seen edge-on covers nothing.
 */
void raster_triangle(const double u[3], const double v[3], const double z[3], size_t w,
		     size_t h, float *depth, float *attr, float value);

#endif
