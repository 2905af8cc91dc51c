/*
 * fuzz_ply.c - libFuzzer target for the PLY reader: any input must give
 * a scan or a clean error (no crash, no leak, no huge allocation), and a
 * scan that reads must hold only in-range indices.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "formats/formats.h"
#include "formats/scan.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan s;
	struct err e;
	err_init(&e);
	if (ply_read(data, size, limits_default(), &s, &e) == 0) {
		for (size_t i = 0; i < 3 * s.n_faces; i++)
			if (s.indices[i] >= s.n_vertices)
				abort();
	} else if (!e.msg[0]) {
		abort();
	}
	scan_release(&s);
	return 0;
}
