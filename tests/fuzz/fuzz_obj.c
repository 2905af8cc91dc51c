/*
 * fuzz_obj.c - libFuzzer target for the OBJ reader: obj_read() into a
 * fresh scan, then the same input again cut into 16-byte chunks, which
 * must give exactly the same result (the parallel split is not allowed
 * to change anything), and the probe.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "formats/formats.h"
#include "formats/obj_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const void *a, const void *b, size_t n)
{
	if ((a == NULL) != (b == NULL) || (a && memcmp(a, b, n)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan a, b;
	struct err ea, eb;
	scan_init(&a);
	scan_init(&b);
	err_init(&ea);
	err_init(&eb);
	(void)obj_probe(data, size);
	int ra = obj_read(data, size, NULL, &a, &ea);
	int rb = obj_read_chunked(data, size, NULL, &b, &eb, 16);
	if (ra != rb || ea.line != eb.line || strcmp(ea.msg, eb.msg))
		abort();
	if (ra == 0) {
		if (a.n_vertices != b.n_vertices || a.n_faces != b.n_faces ||
		    a.n_materials != b.n_materials || a.n_warnings != b.n_warnings)
			abort();
		same(a.positions, b.positions, 12 * a.n_vertices);
		same(a.indices, b.indices, 12 * a.n_faces);
		same(a.normals, b.normals, 12 * a.n_vertices);
		same(a.colors, b.colors, 4 * a.n_vertices);
		same(a.corner_uvs, b.corner_uvs, 24 * a.n_faces);
		same(a.face_material, b.face_material, 4 * a.n_faces);
		for (size_t i = 0; i < a.n_faces * 3; i++)
			if (a.indices[i] >= a.n_vertices)
				abort();
	}
	scan_release(&a);
	scan_release(&b);
	return 0;
}
