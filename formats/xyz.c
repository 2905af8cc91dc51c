/*
 * xyz.c - NEEDSWORK: placeholder until the xyz reader lands.
 */
#include "formats.h"
#include "../common/err.h"

int xyz_probe(const unsigned char *buf, size_t len)
{
	(void)buf;
	(void)len;
	return 0;
}

int xyz_read(const unsigned char *buf, size_t len, const struct limits *lim,
	     struct scan *out, struct err *e)
{
	(void)buf;
	(void)len;
	(void)lim;
	(void)out;
	return err_set(e, ERR_UNSUPPORTED, "xyz reader not built yet");
}
