/* SPDX-License-Identifier: MIT */
/* cmd_fsck.c - placeholder until the command lands. */
#include "cli.h"

int cmd_fsck(struct cli *cli, int argc, char **argv)
{
	return cli_fail(-ENOSYS, "'fsck' is not implemented yet");
}
