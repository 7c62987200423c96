/* SPDX-License-Identifier: MIT */
/*
 * remotes.h - what a store remembers of remote stores: each remote's
 * address and options (never its credentials, only where to read them),
 * and, per platform that follows a remote, the remote generation it last
 * switched to (format.h: "Remote", "Follow").
 *
 * The one idea: a follower's switch and the record of which remote
 * generation it applied are one synced transaction, so after a crash a
 * platform is on its old image with its old follow record or on the new
 * image with the new one, and a replayed older generation is always
 * recognised.
 */
#ifndef CAIRN_REMOTES_H
#define CAIRN_REMOTES_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define CAIRN_REMOTE_KEY_LEN 32 /* Ed25519 public key */
#define CAIRN_REMOTE_STR_MAX 4096

/* A remote record, decoded. Strings are malloc'ed, NUL-terminated, owned. */
struct cairn_remote_rec {
	char *name;
	char *url;          /* "s3://BUCKET[/PREFIX]" */
	char *endpoint;     /* "http[s]://HOST[:PORT]" */
	char *ca_file;      /* "" for the system's CA store */
	char *cred_file;    /* "" for the environment's AWS_* variables */
	uint32_t timeout_ms;
	bool trust;         /* pointers must be signed by trust_key */
	uint8_t trust_key[CAIRN_REMOTE_KEY_LEN];
};

void cairn_remote_rec_release(struct cairn_remote_rec *r);

/* Remote names follow the tag rules (image.h). */
int cairn_remote_name_check(const char *name);

/* Reads a remote by name; -ENOENT (with a message) when there is none. */
int cairn_remote_get(struct cairn_txn *t, const char *name, struct cairn_remote_rec *out);

/*
 * Adds a remote in one synced transaction; -EEXIST (with a message) when
 * the name is taken.
 */
int cairn_remote_add(struct cairn_store *s, const struct cairn_remote_rec *r);

/*
 * Removes a remote and the follow records naming it, in one synced
 * transaction; -ENOENT when there is no such remote, -EBUSY (nothing
 * removed) while lazy records (lazy.h) name it for chunks not local yet.
 */
int cairn_remote_remove(struct cairn_store *s, const char *name);

/* Calls fn for each remote in name order; stops at a non-zero return. */
int cairn_remote_walk(struct cairn_txn *t, int (*fn)(const struct cairn_remote_rec *r, void *arg),
		      void *arg);

/* A platform's follow record. */
struct cairn_follow {
	char remote[130];    /* the remote's name */
	uint64_t remote_gen; /* the remote generation last switched to */
	uint64_t local_gen;  /* the local generation that switch made */
};

/* The platform's follow record; -ENOENT when it follows nothing. */
int cairn_follow_get(struct cairn_txn *t, const char *platform, struct cairn_follow *f);

/*
 * Switches platform to image because the remote's platform is at remote_gen,
 * and records it, in one synced transaction. Refused (-ESTALE, with a
 * message) unless remote_gen is above the recorded one, and (-EBUSY) when the
 * platform was moved locally since the last follow (paused), unless resume.
 * Returns the local generation in *gen (unchanged when the platform already
 * shows image: the record still moves to remote_gen).
 */
int cairn_follow_switch(struct cairn_store *s, const char *platform, const char *remote,
			uint64_t remote_gen, const struct cairn_id *image, bool resume,
			uint64_t *gen);

#endif
