/*
 * fuzz_pcd.c - libFuzzer target for the PCD reader (ascii, binary,
 * binary_compressed).  Limits are shrunk so that a valid-looking header
 * cannot make a run spend its memory on a legitimately huge cloud; the
 * reader must never crash, hang, leak or over-allocate.  Crashers go to
 * tests/data/pcd/fuzz/, which test_pcd replays.
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
	if (pcd_read(data, size, &lim, &s, &e) == 0) {
		/* touch what the reader claims to have filled */
		volatile float sink = 0;
		for (size_t i = 0; i < s.n_vertices; i++)
			sink += s.positions[3 * i] + (s.normals ? s.normals[3 * i] : 0) +
				(s.colors ? s.colors[4 * i] : 0);
		(void)sink;
	}
	scan_release(&s);
	return 0;
}
