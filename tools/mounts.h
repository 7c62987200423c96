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
	char *upper;          /* "" for a read-only mount */
	uint64_t generation;  /* of the platform, when it follows one */
	struct cairn_id *leases; /* images it may still read (gc keeps them) */
	size_t nleases;
};

/* The records of live mounts (stale ones are removed); returns how many. */
int load_records(const char *store, struct record **out);
void records_free(struct record *rs, int n);

/* Connects to a control socket and sends req; returns the fd or -errno. */
int control_send(const char *sock_path, const char *req);
/*
 * Reads one answer line from each of n sockets at once, within timeout_ms in
 * all. Closes them; fds[i] becomes -1 when answered (bufs[i] holds it), -2
 * when not in time.
 */
int control_collect(int *fds, char **bufs, size_t len, int n, int timeout_ms);
/* Sends req to a control socket and reads the answer (5 s at most). */
int control_request(const char *sock_path, const char *req, char *buf, size_t len);

#endif
