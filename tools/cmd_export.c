/* SPDX-License-Identifier: MIT */
/* cmd_export.c - placeholder until the command lands. */
#include "cli.h"

int cmd_export(struct cli *cli, int argc, char **argv)
{
	return cli_fail(-ENOSYS, "'export' is not implemented yet");
}
