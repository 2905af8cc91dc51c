/*
 * obj.c - NEEDSWORK: placeholder until the obj reader lands.
 */
#include "formats.h"
#include "../common/err.h"

int obj_probe(const unsigned char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return 0;
}

int obj_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	(void)buf;
	(void)len;
	(void)lim;
	(void)out;
	return err_set(e, ERR_UNSUPPORTED, "obj reader not built yet");
}
