/* SPDX-License-Identifier: MIT */
/* remote_yes.c - cairn-remote: the build that links libcurl (remote stores). */
#include "cli.h"
#include "fetch.h"

bool cli_has_remote(void)
{
	return true;
}

/* A command's lazy reads (cat, export) may use the caller's own credentials. */
int cli_store_sources(struct cairn_store *s)
{
	return cairn_remote_fetcher_attach(s, 0, NULL, NULL);
}
