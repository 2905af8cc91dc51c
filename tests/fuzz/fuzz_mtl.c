/*
 * fuzz_mtl.c - libFuzzer target for the MTL reader: mtl_read() into a
 * fresh scan that, like one read from an OBJ, already names a material.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan s;
	struct err e;
	scan_init(&s);
	err_init(&e);
	if (scan_material_intern(&s, "a", 1) < 0)
		abort();
	(void)mtl_read(data, size, NULL, &s, &e);
	for (size_t i = 0; i < s.n_materials; i++)
		if (s.materials[i].texture >= (int32_t)s.n_textures)
			abort();
	scan_release(&s);
	return 0;
}
