/*
 * triangulate.c - NEEDSWORK: fan triangulation placeholder; ear clipping
 * (concave polygons) lands with the OBJ reader.
 */
#include "triangulate.h"
#include "../common/err.h"

#include <string.h>

void triangulator_init(struct triangulator *t)
{
	memset(t, 0, sizeof(*t));
}

void triangulator_release(struct triangulator *t)
{
	memset(t, 0, sizeof(*t));
}

int triangulate_polygon(struct triangulator *t, const float *positions,
			size_t n_positions, const uint32_t *poly, uint32_t n,
			uint32_t *out, struct err *e)
{
	(void)t;
	(void)positions;
	if (n < 3)
		return err_set(e, ERR_FORMAT, "polygon with %u vertices", n);
	for (uint32_t i = 0; i < n; i++)
		if (poly[i] >= n_positions)
			return err_set(e, ERR_FORMAT, "vertex index %u out of range (have %zu)",
				       poly[i], n_positions);
	for (uint32_t i = 0; i + 2 < n; i++) {
		out[3 * i] = poly[0];
		out[3 * i + 1] = poly[i + 1];
		out[3 * i + 2] = poly[i + 2];
	}
	return 0;
}
