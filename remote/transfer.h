/* SPDX-License-Identifier: MIT */
/*
 * transfer.h - push and pull: moving images, tags and platform generations
 * between a store and a remote, only what the other side lacks.
 *
 * Push walks the image in the store (each object once), asks the remote's
 * pack indexes (rindex.h) what it has, and uploads the rest as new packs:
 * one or more "meta" packs of nodes and content lists, then "data" packs of
 * chunks in the walk's order (so a file's chunks are neighbours), each pack
 * before its index, then the image object naming every pack the image
 * needs, then the pointer. Each PUT is atomic, and an object is only
 * reachable once everything it names is there, so a push killed at any
 * moment leaves nothing half-visible and re-running it sends what is
 * missing.
 *
 * Pull reads the image object (checked against the image id), the indexes
 * of its packs, then walks the tree level by level: what the store has is
 * read locally, what it lacks is fetched in ranged GETs (neighbours
 * coalesced, many at once), every object checked against its id before it
 * is stored (nodes and content lists by the hash of their value, chunks
 * decoded and hashed), chunks marked untrusted. The image and its
 * name are published last, in one synced transaction, as an import does; a
 * pull killed at any moment leaves the store as it was plus unreferenced
 * records, and re-running it fetches only what is still missing.
 */
#ifndef CAIRN_TRANSFER_H
#define CAIRN_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "remote.h"
#include "rindex.h"
#include "sign.h"

struct cairn_xfer_stats {
	uint64_t objects_sent, bytes_sent;
	uint64_t objects_received, bytes_received;
	uint64_t objects_total, bytes_total; /* known so far, for progress */
	uint64_t lazy_chunks, lazy_bytes;    /* pull --lazy: chunks left on the remote, their bytes */
	int64_t start_ns;
};

struct cairn_xfer {
	struct cairn_store *s;
	struct cairn_remote_conn *c;
	bool progress;                  /* a progress line on stderr */
	const char *verb;               /* "pushing", "pulling" */
	const struct cairn_signer *sign; /* push: sign pointers (may be NULL) */
	bool lazy;                      /* pull: metadata only, chunks on first read (lazy.h) */
	struct cairn_xfer_stats st;
	uint64_t bytes_base;            /* protocol bytes (lock objects) not counted as sent */
	int64_t last_progress_ns;
	const char *lock_key;           /* push: its lock object, refreshed while it runs */
	int64_t lock_ns;                /* when the lock was last written */
	uint8_t lock_body[16];
};

void cairn_xfer_init(struct cairn_xfer *x, struct cairn_store *s, struct cairn_remote_conn *c,
		     const char *verb, bool progress);
/* Draws the progress line (at most 5 times a second unless final). */
void cairn_xfer_progress(struct cairn_xfer *x, bool final);
double cairn_xfer_seconds(const struct cairn_xfer *x);

/*
 * Uploads what the remote lacks of image (an image already on the remote
 * costs one request). Returns 0 or -errno with a message.
 */
int cairn_push_image(struct cairn_xfer *x, const struct cairn_id *image);
/* Points tag NAME on the remote at image (pushed first), signed when x->sign. */
int cairn_push_tag(struct cairn_xfer *x, const char *name, const struct cairn_id *image);
/*
 * Pushes a platform's current image as the remote platform's next
 * generation (created with If-None-Match, so two pushers never share one).
 * Nothing is added when the remote's newest generation shows that image
 * already. *gen is the remote generation that shows it.
 */
int cairn_push_platform(struct cairn_xfer *x, const char *platform, uint64_t *gen);

/* What a remote name stands for. */
struct cairn_rtarget {
	struct cairn_id image;
	bool is_tag, is_platform;
	uint64_t generation;    /* platforms: the generation */
	char name[130];         /* the tag or platform */
};

/*
 * Resolves NAME on the remote: a tag, a platform (its newest generation;
 * PLATFORM@GEN one generation) or a full image id. When the remote is
 * trusted with a key, a pointer must carry a good signature by it (a
 * platform's newest signed generation counts; unsigned ones are refused).
 */
int cairn_remote_resolve(struct cairn_xfer *x, const char *name, struct cairn_rtarget *out);

/*
 * The newest generation of a remote platform (0 when it has none), with
 * its pointer; with trust, the newest that is signed by the key.
 */
int cairn_remote_platform_head(struct cairn_xfer *x, const char *platform,
			       struct cairn_rptr *head);

/*
 * Fetches what the store lacks of image and publishes it, tagged tag when
 * not NULL. With x->lazy, fetches the metadata only (nodes and content
 * lists, each checked against its id) and records where each chunk the
 * store lacks is on the remote (store/lazy.h): the image mounts at once and
 * its chunks are fetched on first read; the remote must then have a
 * credentials file (whoever reads later never uses this environment). A
 * pull without lazy of a lazily pulled image fetches its remaining chunks.
 * Returns 0 or -errno with a message.
 */
int cairn_pull_image(struct cairn_xfer *x, const struct cairn_id *image, const char *tag);

#endif
