/* SPDX-License-Identifier: MIT */
/*
 * mounts.h - what other commands need of running mounts: their records in
 * STORE/run and their control sockets.
 */
#ifndef CAIRN_MOUNTS_H
#define CAIRN_MOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct record {
	int pid;
	char *mountpoint, *source, *image, *socket;
	char *platform;       /* "" for a pinned image */
	uint64_t generation;  /* of the platform, when it follows one */
	struct cairn_id *leases; /* images it may still read (gc keeps them) */
	size_t nleases;
};

/* The records of live mounts (stale ones are removed); returns how many. */
int load_records(const char *store, struct record **out);
void records_free(struct record *rs, int n);

/* Sends req to a control socket and reads the answer (5 s at most). */
int control_request(const char *sock_path, const char *req, char *buf, size_t len);

#endif
