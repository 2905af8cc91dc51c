/*
 * ply.c - NEEDSWORK: placeholder until the ply reader lands.
 */
#include "formats.h"
#include "../common/err.h"

int ply_probe(const unsigned char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return 0;
}

int ply_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	(void)buf;
	(void)len;
	(void)lim;
	(void)out;
	return err_set(e, ERR_UNSUPPORTED, "ply reader not built yet");
}

int ply_write_stream(void *fp, const struct scan *s, struct err *e)
{
	(void)fp;
	(void)s;
	return err_set(e, ERR_UNSUPPORTED, "ply writer not built yet");
}

int ply_write(const char *path, const struct scan *s, struct err *e)
{
	(void)path;
	(void)s;
	return err_set(e, ERR_UNSUPPORTED, "ply writer not built yet");
}
