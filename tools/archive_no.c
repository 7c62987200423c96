/* SPDX-License-Identifier: MIT */
/*
 * archive_no.c - the lean cairn: commands that need libarchive run in
 * cairn-archive (installed beside it), which main() executes in their place
 * before these entries could be reached.
 */
#include "cli.h"

bool cli_has_archive(void)
{
	return false;
}

int cmd_import(struct cli *cli, int argc, char **argv)
{
	return cli_exec_archive(cli);
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	return cli_exec_archive(cli);
}

const char cmd_export_help[] = "";

int cmd_commit(struct cli *cli, int argc, char **argv)
{
	return cli_exec_archive(cli);
}
