/*
 * limits.c - default reader limits (see limits.h).
 */
#include "limits.h"

static const struct limits defaults = {
	.max_vertices = LIMIT_MAX_VERTICES,
	.max_faces = LIMIT_MAX_FACES,
	.max_polygon_degree = LIMIT_MAX_POLYGON_DEGREE,
	.max_line_length = LIMIT_MAX_LINE_LENGTH,
	.max_image_dim = LIMIT_MAX_IMAGE_DIM,
	.max_image_pixels = LIMIT_MAX_IMAGE_PIXELS,
	.max_referenced_files = LIMIT_MAX_REFERENCED_FILES,
	.max_properties = LIMIT_MAX_PROPERTIES,
	.max_header_bytes = LIMIT_MAX_HEADER_BYTES,
};

void limits_init(struct limits *l)
{
	*l = defaults;
}

const struct limits *limits_default(void)
{
	return &defaults;
}
