/*
 * limits.h - hard caps applied by every reader before it allocates.
 *
 * A file that declares more than a cap is rejected with ERR_LIMIT, never
 * allocated for.  Defaults are generous for real scans (tens of millions
 * of triangles, 16k textures); they can be changed at run time by filling
 * a struct limits differently (tests shrink them).
 */
#ifndef REFSCAN_LIMITS_H
#define REFSCAN_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct limits {
	uint64_t max_vertices;       /* per scan; indices are uint32 */
	uint64_t max_faces;          /* triangles after triangulation */
	uint32_t max_polygon_degree; /* vertices in one source polygon */
	size_t max_line_length;      /* bytes in one text line */
	uint32_t max_image_dim;      /* width or height in pixels */
	uint64_t max_image_pixels;   /* width * height */
	size_t max_referenced_files; /* mtllib + textures per scan */
	size_t max_properties;       /* per PLY element / PCD fields */
	size_t max_header_bytes;     /* PLY / PCD / OFF header */
};

#define LIMIT_MAX_VERTICES ((uint64_t)INT32_MAX)
#define LIMIT_MAX_FACES ((uint64_t)INT32_MAX)
#define LIMIT_MAX_POLYGON_DEGREE 65536u
#define LIMIT_MAX_LINE_LENGTH ((size_t)1 << 24)
#define LIMIT_MAX_IMAGE_DIM 32768u
#define LIMIT_MAX_IMAGE_PIXELS ((uint64_t)1 << 28)
#define LIMIT_MAX_REFERENCED_FILES 4096u
#define LIMIT_MAX_PROPERTIES 1024u
#define LIMIT_MAX_HEADER_BYTES ((size_t)1 << 20)

/* Fill l with the defaults above. */
void limits_init(struct limits *l);

/* The defaults, for callers that pass NULL. */
const struct limits *limits_default(void);

#endif
