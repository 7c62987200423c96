/* SPDX-License-Identifier: MIT */
/*
 * remote_no.c - the builds without libcurl: commands that reach remote
 * stores run in cairn-remote (installed beside cairn), which main()
 * executes in their place before these entries could be reached.
 */
#include "cli.h"

bool cli_has_remote(void)
{
	return false;
}

int cli_store_sources(struct cairn_store *s)
{
	return 0; /* lazily pulled chunks read as "not fetched yet" here */
}

int cmd_remote(struct cli *cli, int argc, char **argv)
{
	return cli_exec_remote(cli);
}

int cmd_push(struct cli *cli, int argc, char **argv)
{
	return cli_exec_remote(cli);
}

int cmd_pull(struct cli *cli, int argc, char **argv)
{
	return cli_exec_remote(cli);
}

int cmd_follow(struct cli *cli, int argc, char **argv)
{
	return cli_exec_remote(cli);
}

int cli_gc_remote(struct cli *cli, const char *remote, int64_t keep)
{
	return cli_exec_remote(cli);
}

const char cmd_remote_help[] = "";
const char cmd_push_help[] = "";
const char cmd_pull_help[] = "";
const char cmd_follow_help[] = "";
