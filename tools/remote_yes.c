/* SPDX-License-Identifier: MIT */
/* remote_yes.c - cairn-remote: the build that links libcurl (remote stores). */
#include "cli.h"

bool cli_has_remote(void)
{
	return true;
}
