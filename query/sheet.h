/*
 * sheet.h - contact sheets: scans drawn as small shaded pictures, a
 * sculpt beside its matches, written as one PNG (refscan query --sheet).
 *
 * A match is easier to judge by eye than by its score: the sheet puts
 * each sculpt at the head of a row and its matches after it in rank
 * order, each lit from the upper left so that relief reads, with a bar
 * under every match as long as its score.  A surface is drawn in its
 * colour where it has one (its texture, else vertex or face colours, the
 * descriptor's rule: describe_surface_rgb), else as grey clay.
 *
 * Drawing is orthographic, looking along the scan's least principal
 * axis (a sheet of relief is seen square-on, a limb from its side) or
 * along a given direction (the view a match was found from), framed to
 * fill the cell.  Meshes are drawn by their triangles with a depth
 * buffer, two-sided, flat-shaded, coloured at each sample's point of
 * its triangle, at twice the resolution and averaged down; clouds by their
 * points, lit by their normals, or shaded by depth when they have none.
 */
#ifndef REFSCAN_SHEET_H
#define REFSCAN_SHEET_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct image;
struct scan;

#define SHEET_CELL 256u /* pixels across one drawing */
#define SHEET_PAD 8u    /* between cells and around the sheet */
#define SHEET_BAR 6u    /* height of the score bar under a match */
#define SHEET_MAX_COLS 17u   /* a sculpt and its first 16 matches */
#define SHEET_MAX_ROWS 1024u /* sculpts on one sheet */

enum sheet_kind {
	SHEET_SCULPT,  /* head of a row: tinted background */
	SHEET_MATCH,   /* white background, score bar */
	SHEET_MISSING, /* a scan that could not be read: crossed out */
};

struct sheet {
	uint32_t rows, cols;
	uint32_t w, h;  /* pixels */
	uint8_t *rgb;   /* w * h * 3, top row first */
};

/*
 * Draw s into rgb (w x h RGB, top row first, painted over; w, h >= 16)
 * looking along dir (a unit vector in the scan's coordinates; NULL: down
 * its least principal axis, from the side an open surface faces).  tex:
 * n_tex decoded textures aligned with s->textures (describe_load_textures;
 * may be NULL).  Returns 0, ERR_NOMEM, or ERR_UNDESCRIBABLE when s has no
 * finite vertex (rgb untouched).  Thread-safe for distinct rgb.
 */
int sheet_render(const struct scan *s, const struct image *tex, size_t n_tex,
		 const double *dir, uint8_t *rgb, uint32_t w, uint32_t h, struct err *e);

/*
 * A blank sheet of rows x cols cells (at most SHEET_MAX_ROWS x
 * SHEET_MAX_COLS).  Returns 0, ERR_NOMEM, or ERR_LIMIT for a sheet too
 * large.
 */
int sheet_init(struct sheet *sh, uint32_t rows, uint32_t cols, struct err *e);

/*
 * Fill cell (row, col): s drawn along dir (as sheet_render; s is ignored
 * for SHEET_MISSING), with a bar of score/100 of the cell's width under a
 * match.  Thread-safe for distinct cells.  Returns 0 or ERR_NOMEM; a scan
 * with nothing to draw leaves the cell crossed out and returns
 * ERR_UNDESCRIBABLE.
 */
int sheet_cell(struct sheet *sh, uint32_t row, uint32_t col, enum sheet_kind kind,
	       const struct scan *s, const struct image *tex, size_t n_tex, const double *dir,
	       double score, struct err *e);

/* Write the sheet as a PNG (atomically).  Returns 0 or an errc; e names path. */
int sheet_write(const struct sheet *sh, const char *path, struct err *e);

void sheet_release(struct sheet *sh);

#endif
