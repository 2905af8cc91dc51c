/*
 * exitcodes.h - the process exit statuses of refscan, sysexits-style.
 * Documented in docs/refscan.1 (EXIT STATUS); keep the two in step.
 */
#ifndef REFSCAN_EXITCODES_H
#define REFSCAN_EXITCODES_H

enum exit_status {
	EXIT_OK = 0,          /* everything succeeded */
	EXIT_PARTIAL = 1,     /* finished, but some inputs were rejected */
	EXIT_NOCOMMIT = 2,    /* index: nothing could be committed */
	EXIT_USAGE = 64,      /* command line usage error */
	EXIT_DATAERR = 65,    /* input data was malformed */
	EXIT_NOINPUT = 66,    /* an input file or archive does not exist */
	EXIT_SOFTWARE = 70,   /* internal error */
	EXIT_CANTCREAT = 73,  /* cannot create an output file */
	EXIT_IOERR = 74,      /* I/O error */
	EXIT_TEMPFAIL = 75    /* archive locked by another writer; try later */
};

#endif
