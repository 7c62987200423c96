/* SPDX-License-Identifier: MIT */
/*
 * image.h - image records, tags, and turning what a person typed into an
 * image.
 *
 * Names. An image is named by a tag, a platform (its current image),
 * PLATFORM@GEN (the image of that generation), a unique prefix of its id
 * (at least 4 hex digits) or its full id, looked up in that order. Every
 * command that names an image goes through this family and platform.h:
 *   - reading a name:          cairn_name_resolve() (and its short form
 *                              cairn_image_resolve()); mount uses the kind
 *                              it returns to tell a platform to follow
 *                              from a tag or an id to pin;
 *   - making or dropping one:  cairn_tag_set(), cairn_tag_remove(),
 *                              cairn_image_remove(), cairn_image_hold()
 *                              (a mount starting) here,
 *                              cairn_platform_upgrade() and
 *                              cairn_platform_rollback() in platform.h, and
 *                              cairn_writer_publish() (import, commit --tag);
 *   - listing:                 cairn_image_each(), cairn_tag_each(),
 *                              cairn_platform_each().
 * The verbs that write each run in one naming transaction (store-internal.h:
 * cairn_naming_begin/commit), fully synced, which checks inside that
 * transaction that the image it names is in the store: the one place where
 * naming and gc (gc.h) meet.
 */
#ifndef CAIRN_IMAGE_H
#define CAIRN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct cairn_image {
	struct cairn_id id;
	struct cairn_id root;
	uint32_t nlayers;
	const uint8_t *layers; /* nlayers x 16 bytes, in the value */
	int64_t created_ns;
	uint64_t logical_size;
	uint64_t nodes;
	const char *msg;       /* msg_len bytes, not NUL-terminated */
	uint32_t msg_len;
};

/* XXH3-128("cairn-image" || nlayers || layer ids || root). */
void cairn_image_id(const struct cairn_id *layers, uint32_t n, const struct cairn_id *root,
		    struct cairn_id *out);

int cairn_image_encode(const struct cairn_id *layers, uint32_t n, const struct cairn_id *root,
		       int64_t created_ns, uint64_t logical_size, uint64_t nodes, const char *msg,
		       struct cairn_buf *out);
int cairn_image_parse(const void *val, size_t len, struct cairn_image *img);

/* Reads an image record by id; -ENOENT if absent. Valid until the txn ends. */
int cairn_image_get(struct cairn_txn *t, const struct cairn_id *id, struct cairn_image *img);

/*
 * Calls fn for each image record, in id order (a damaged record is
 * skipped: fsck reports it). img is valid during the call. Stops at the
 * first non-zero return of fn and returns it; 0 at the end, or -errno.
 */
int cairn_image_each(struct cairn_txn *t, int (*fn)(const struct cairn_image *img, void *arg),
		     void *arg);

/* What a name turned out to be. */
enum cairn_name_kind {
	CAIRN_NAME_TAG,        /* a tag */
	CAIRN_NAME_PLATFORM,   /* a platform: its current image */
	CAIRN_NAME_GENERATION, /* PLATFORM@GEN */
	CAIRN_NAME_ID,         /* an id or a unique prefix of one */
};

#define CAIRN_TAG_MAX 128 /* tag and platform names */

struct cairn_name {
	enum cairn_name_kind kind;
	struct cairn_id image;
	char platform[CAIRN_TAG_MAX + 1]; /* PLATFORM, GENERATION: its name; else "" */
	uint64_t generation;               /* PLATFORM: current; GENERATION: that one */
};

/*
 * Resolves a name (see above) to an image and says what kind of name it
 * was. Returns 0, -ENOENT (with a message naming spec), -EINVAL for an
 * ambiguous prefix, -EUCLEAN for a damaged record. The image record itself
 * is not read: it may be gone (a damaged store); cairn_image_get() says.
 */
int cairn_name_resolve(struct cairn_txn *t, const char *spec, struct cairn_name *out);

/* cairn_name_resolve(), for a caller that wants only the image id. */
int cairn_image_resolve(struct cairn_txn *t, const char *spec, struct cairn_id *id);

/* Tag names: 1..128 bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
int cairn_tag_check(const char *name);

/* The image tag name points at; -ENOENT if there is no such tag. */
int cairn_tag_get(struct cairn_txn *t, const char *name, struct cairn_id *id);

/*
 * Calls fn for each tag in name order (name: len bytes, not NUL-terminated,
 * valid during the call). Stops at the first non-zero return and returns
 * it; 0 at the end, or -errno.
 */
int cairn_tag_each(struct cairn_txn *t,
		   int (*fn)(const char *name, size_t len, const struct cairn_id *image, void *arg),
		   void *arg);

/*
 * Points tag name at image (moving it when it exists), in one synced naming
 * transaction. -EINVAL for a bad name, -ENOENT (with a message) when the
 * image is not in the store at commit time.
 */
int cairn_tag_set(struct cairn_store *s, const char *name, const struct cairn_id *image);

/*
 * A mount's hold on the images it serves: call it once the mount's record
 * (its leases, STORE/run) is written, before serving. One naming
 * transaction checks each image is still in the store and moves the epoch,
 * so a gc that read the leases before the record existed marks again
 * (gc.h). -ENOENT with a message when one is gone: gc collected it while
 * the mount started (nothing else named it); the mount must not serve it.
 */
int cairn_image_hold(struct cairn_store *s, const struct cairn_id *images, size_t n);

/* Removes tag name (never its image), synced. -ENOENT with a message if absent. */
int cairn_tag_remove(struct cairn_store *s, const char *name);

/*
 * Removes an image record and every tag naming it, in one synced naming
 * transaction. Refused with -EBUSY (and a message naming "PLATFORM@GEN")
 * while a platform's current image or history names it; -ENOENT when it
 * is not in the store. What the image alone reached is reclaimed by gc.
 */
int cairn_image_remove(struct cairn_store *s, const struct cairn_id *image);

/*
 * The image record as the store keeps it (format.h), in place: valid until
 * the transaction ends; -ENOENT. For code that copies it (push).
 */
int cairn_image_record(struct cairn_txn *t, const struct cairn_id *id, const void **val,
		       size_t *len);
/* A layer's source (enum cairn_layer_source); -ENOENT, -EUCLEAN. */
int cairn_layer_source(struct cairn_txn *t, const struct cairn_id *layer, uint8_t *source);

#endif
