/* SPDX-License-Identifier: MIT */
/*
 * platform.h - platforms: a name pointing at one image, moved by upgrades
 * and rollbacks, each of which appends a generation to its history.
 *
 * Every switch is one fully synced LMDB transaction (a naming transaction,
 * image.h): after a crash at any moment a platform is on its old image or
 * its new one, never between. These verbs and image.h's are the one family
 * through which commands name images.
 */
#ifndef CAIRN_PLATFORM_H
#define CAIRN_PLATFORM_H

#include <stdint.h>

#include "image.h"
#include "store.h"

struct cairn_platform {
	uint64_t generation;
	struct cairn_id image;
};

struct cairn_generation {
	uint64_t generation;
	uint8_t action;          /* enum cairn_action */
	struct cairn_id image;
	int64_t time_ns;
	uint64_t restored;       /* rollbacks: the generation restored */
};

/* Platform names follow the tag rules (image.h). */
int cairn_platform_check(const char *name);

/* The platform's current generation and image; -ENOENT if there is none. */
int cairn_platform_get(struct cairn_txn *t, const char *name, struct cairn_platform *p);

/*
 * Calls fn for each platform in name order (a damaged record is skipped:
 * fsck reports it). Stops at the first non-zero return of fn and returns
 * it; 0 at the end, or -errno.
 */
int cairn_platform_each(struct cairn_txn *t,
			int (*fn)(const char *name, const struct cairn_platform *p, void *arg),
			void *arg);

/* One generation of a platform's history; -ENOENT if absent. */
int cairn_generation_get(struct cairn_txn *t, const char *name, uint64_t gen,
			 struct cairn_generation *g);

/*
 * Calls fn for each generation of name, oldest first; stops at the first
 * non-zero return and returns it.
 */
int cairn_history_walk(struct cairn_txn *t, const char *name,
		       int (*fn)(const struct cairn_generation *g, void *arg), void *arg);

/*
 * Points name at image in one synced transaction, appending a generation
 * (the first upgrade creates the platform). Already on image: nothing is
 * written and *gen is the current generation. Returns 0 or -errno.
 */
int cairn_platform_upgrade(struct cairn_store *s, const char *name, const struct cairn_id *image,
			   uint64_t *gen);


/*
 * Rolls name back, in one synced transaction, to the image of generation
 * to (0: the generation before the one the current generation came from,
 * so repeated rollbacks walk back). Appends a generation; returns it and
 * the image now current.
 */
int cairn_platform_rollback(struct cairn_store *s, const char *name, uint64_t to, uint64_t *gen,
			    struct cairn_id *image);

/* Does any platform's current image or history name id? Sets *who ("name@gen"). */
int cairn_platform_uses(struct cairn_txn *t, const struct cairn_id *id, char *who, size_t len);

#endif
