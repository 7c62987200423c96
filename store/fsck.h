/* SPDX-License-Identifier: MIT */
/*
 * fsck.h - checking a whole store: every value against its key, and the
 * graph from every image, layer, tag and platform down to the chunks.
 *
 * Two halves. The scans read every value of the packs, chunks, contents,
 * nodes, layers, images, tags and platforms databases once and check it on
 * its own: it parses strictly, and for content-addressed values, its bytes
 * hash to its key (a chunk's decoded bytes, read from its pack within the
 * pack's committed size; a content list's file bytes, holes read as zeros;
 * a node's encoding). The walk then follows every image's
 * and layer's trees (cairn_walk, each node once) and checks what the scans
 * cannot: every reference leads to an object that exists, of the type and
 * length the reference says.
 *
 * Everything runs in one read transaction, so the store can be used (and
 * written) meanwhile and the check sees one consistent state. Nothing is
 * written. A problem found does not stop the check; only failing to read
 * the store does.
 */
#ifndef CAIRN_FSCK_H
#define CAIRN_FSCK_H

#include <stdint.h>

#include "store.h"

/* One problem: "<kind> <name>: <msg>". Strings live until the callback returns. */
struct cairn_fsck_problem {
	const char *kind; /* "pack", "chunk", "content", "node", "layer", "image", "tag",
			     "platform", or "store" (a file other users may read) */
	const char *name; /* an id in hex, a pack number in hex, or a tag or platform
			     name (any bytes) */
	size_t name_len;
	const char *msg;  /* what is wrong, lowercase, no full stop */
};

struct cairn_fsck_stats {
	/* values checked, per database */
	uint64_t packs, chunks, contents, lazy, nodes, layers, images, tags, platforms;
	uint64_t chunk_bytes; /* decoded bytes of the chunks checked */
	/* distinct objects the images and layers reach */
	uint64_t reachable;
	uint64_t not_fetched; /* of those, chunks a lazy pull left on its remote (no problem) */
	uint64_t problems;
};

typedef void (*cairn_fsck_problem_fn)(void *ctx, const struct cairn_fsck_problem *p);
/* phase: "chunks", "contents", ...; done of total values (total may be 0). */
typedef void (*cairn_fsck_progress_fn)(void *ctx, const char *phase, uint64_t done,
				       uint64_t total);

struct cairn_fsck_opts {
	cairn_fsck_problem_fn problem;   /* may be NULL */
	cairn_fsck_progress_fn progress; /* may be NULL */
	void *ctx;
};

/*
 * Checks the store, and that other users cannot read it (store.h,
 * cairn_store_perms()). Returns 0 when the check ran (stats->problems says
 * whether it found anything), or -errno with a message when it could not
 * read the store.
 */
int cairn_fsck(struct cairn_store *s, const struct cairn_fsck_opts *opts,
	       struct cairn_fsck_stats *stats);

/* The same, in a transaction the caller holds (read or write). */
int cairn_fsck_txn(struct cairn_txn *t, const struct cairn_fsck_opts *opts,
		   struct cairn_fsck_stats *stats);

#endif
