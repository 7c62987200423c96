/* SPDX-License-Identifier: MIT */
/*
 * cpool.h - chunk compression on worker threads.
 *
 * The writer's thread reads, cuts and hashes; compression (the larger part
 * of an import's CPU) runs here, on one worker per CPU. Work moves in
 * groups of chunks of a few MiB: the writer fills a group, submits it, and
 * later takes back finished groups whose pack entries it files into its
 * batch. The number of groups in flight is bounded, so memory is too.
 *
 * A pool is used by one producer thread.
 */
#ifndef CAIRN_CPOOL_H
#define CAIRN_CPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cairn_cgroup_item {
	struct cairn_id id;
	uint32_t off, len; /* in raw */
};

struct cairn_cgroup {
	struct cairn_cgroup *next;
	struct cairn_buf raw;   /* the chunks' bytes, back to back */
	struct cairn_cgroup_item *items;
	size_t n, cap;
	struct cairn_buf out;   /* pack entries, in item order, once compressed */
	int ret;                /* 0, or why compression failed */
};

#define CAIRN_CGROUP_BYTES (4u << 20)

struct cairn_cpool;

/* Starts threads workers (0: compress on the caller's thread at submit). */
int cairn_cpool_new(unsigned threads, int level, bool untrusted, struct cairn_cpool **out);
/* Waits for the workers to stop; groups still in flight are freed. */
void cairn_cpool_free(struct cairn_cpool *p);

/* A new empty group, or NULL. */
struct cairn_cgroup *cairn_cgroup_new(void);
void cairn_cgroup_free(struct cairn_cgroup *g);
/* Appends a chunk's bytes to g. */
int cairn_cgroup_add(struct cairn_cgroup *g, const struct cairn_id *id, const void *data,
		     size_t len);

/*
 * Hands g to the pool (which owns it from now on). Blocks while too many
 * groups are in flight.
 */
void cairn_cpool_submit(struct cairn_cpool *p, struct cairn_cgroup *g);

/*
 * Takes back finished groups as a list (caller owns them). wait: block
 * until every submitted group is finished and taken. NULL when none.
 */
struct cairn_cgroup *cairn_cpool_take(struct cairn_cpool *p, bool wait);

/* Groups submitted and not yet taken. */
unsigned cairn_cpool_inflight(struct cairn_cpool *p);

#endif
