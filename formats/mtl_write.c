/*
 * mtl_write.c - Wavefront material library writer (see writers.h).
 *
 * Spec: https://paulbourke.net/dataformats/mtl/.  Only what a scan holds:
 * the diffuse colour and the diffuse texture.  Texture paths are written
 * as declared (relative to the MTL file, which readers resolve against
 * the MTL's folder).
 */
#include "writers.h"
#include "scan.h"
#include "../common/err.h"

#include <stdio.h>

#include "../common/banned.h"

int mtl_write_stream(FILE *fp, const struct scan *s, struct err *e)
{
	if (fprintf(fp, "# written by refscan\n# %zu materials\n", s->n_materials) < 0)
		goto io;
	for (size_t i = 0; i < s->n_materials; i++) {
		const struct scan_material *m = &s->materials[i];
		if (fprintf(fp, "\nnewmtl %s\nKa 0 0 0\nKd %.6g %.6g %.6g\nKs 0 0 0\nd 1\nillum 1\n",
			    m->name, (double)m->kd[0], (double)m->kd[1],
			    (double)m->kd[2]) < 0)
			goto io;
		if (m->texture >= 0 && (size_t)m->texture < s->n_textures &&
		    fprintf(fp, "map_Kd %s\n", s->textures[m->texture].declared) < 0)
			goto io;
	}
	if (fflush(fp) != 0 || ferror(fp))
		goto io;
	return 0;
io:
	return err_set_errno(e, ERR_IO, "write failed (material library)");
}

int mtl_write(const char *path, const struct scan *s, struct err *e)
{
	struct wfile w;
	int rc = wfile_open(&w, path, e);
	if (rc)
		return rc;
	rc = mtl_write_stream(w.fp, s, e);
	if (rc) {
		wfile_abort(&w);
		err_set_path(e, path);
		return rc;
	}
	return wfile_commit(&w, e);
}
