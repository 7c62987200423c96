/* SPDX-License-Identifier: MIT */
/*
 * rgc.h - gc --remote: dropping a remote's old generations and the objects
 * nothing kept reaches, safely beside pushes.
 *
 * What is kept: every tag's image and the images of each platform's newest
 * keep generations (all with keep < 0), and every pack those images' image
 * objects name. Everything else under images/ and packs/ is deleted (a pack
 * with its index). A live pack is kept whole: objects in it that nothing
 * reaches any more stay until its images go too.
 *
 * Pushes and gc keep apart with lock objects: a push writes
 * locks/push-RANDOM, then checks for locks/gc; gc creates locks/gc (If-None-Match),
 * then lists the push locks. Each writes before it reads, and S3 (radosgw)
 * is strongly consistent, so of a push and a gc that overlap at least one
 * sees the other and stops (-EBUSY, "try again"); neither can miss the
 * other. A lock older than CAIRN_RLOCK_STALE_NS is a crashed process's and
 * is ignored (a push killed -9 holds gc off that long); a running push
 * re-writes its lock every CAIRN_RLOCK_REFRESH_NS, so it never looks dead.
 */
#ifndef CAIRN_RGC_H
#define CAIRN_RGC_H

#include <stdint.h>

#include "remote.h"

#define CAIRN_RLOCK_STALE_NS (3600ll * 1000000000) /* one hour */

struct cairn_rgc_stats {
	uint64_t generations, images, packs; /* deleted */
	uint64_t images_kept, packs_kept;
};

/* Collects the remote (see above). -EBUSY with a message beside a push or another gc. */
int cairn_remote_gc(struct cairn_remote_conn *c, int64_t keep, struct cairn_rgc_stats *st);

/*
 * A push's lock: writes it (its key into key[cap]), then refuses (-EBUSY,
 * the lock removed again) when a gc holds the remote.
 */
int cairn_rlock_push(struct cairn_remote_conn *c, char *key, size_t cap);
/*
 * Writes a lock object's body (magic and the time now) into body[16]: a
 * push re-writes its lock with it every CAIRN_RLOCK_REFRESH_NS, so a push
 * longer than the stale age still holds gc off.
 */
void cairn_rlock_body(uint8_t body[16]);
#define CAIRN_RLOCK_REFRESH_NS (300ll * 1000000000) /* five minutes */

/* Removes a push's lock (nothing when key is empty). */
void cairn_rlock_release(struct cairn_remote_conn *c, const char *key);

#endif
