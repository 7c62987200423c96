/* SPDX-License-Identifier: MIT */
/* archive_yes.c - cairn-archive: the build that links libarchive. */
#include "cli.h"

bool cli_has_archive(void)
{
	return true;
}
