/* SPDX-License-Identifier: MIT */
/* cmd_du.c - placeholder until the command lands. */
#include "cli.h"

int cmd_du(struct cli *cli, int argc, char **argv)
{
	return cli_fail(-ENOSYS, "'du' is not implemented yet");
}
