/*
 * mtl.c - NEEDSWORK: placeholder until the MTL reader lands.
 */
#include "formats.h"
#include "../common/err.h"

int mtl_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *s, struct err *e)
{
	(void)buf;
	(void)len;
	(void)lim;
	(void)s;
	return err_set(e, ERR_UNSUPPORTED, "mtl reader not built yet");
}
