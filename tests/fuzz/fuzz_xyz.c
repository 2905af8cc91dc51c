/*
 * fuzz_xyz.c - libFuzzer target for the XYZ/PTS reader and its probe.
 * Both the probe and the reader see every input: the probe must never
 * read past the buffer, the reader never crash, hang, leak or
 * over-allocate.  Crashers go to tests/data/xyz/fuzz/, which test_xyz
 * replays.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "formats/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limits lim;
	struct scan s;
	struct err e;

	limits_init(&lim);
	lim.max_vertices = 1u << 22;
	lim.max_line_length = 1u << 16;
	err_init(&e);
	(void)xyz_probe(data, size);
	if (xyz_read(data, size, &lim, &s, &e) == 0) {
		volatile float sink = 0;
		for (size_t i = 0; i < s.n_vertices; i++)
			sink += s.positions[3 * i + 2] + (s.normals ? s.normals[3 * i] : 0) +
				(s.colors ? s.colors[4 * i + 3] : 0);
		(void)sink;
	}
	scan_release(&s);
	return 0;
}
