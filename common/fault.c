/*
 * fault.c - REFSCAN_FAULT crash hook (see fault.h).
 */
#include "fault.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

void fault_point(const char *step)
{
	const char *want = getenv("REFSCAN_FAULT");
	if (want && !strcmp(want, step))
		kill(getpid(), SIGKILL);
}
