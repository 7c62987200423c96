/* SPDX-License-Identifier: MIT */
/*
 * image.h - image records, tags, and turning what a person typed into an
 * image id.
 *
 * An image is named by a tag, a platform (its current image), PLATFORM@GEN
 * (the image of that generation), a unique prefix of its id (at least 4
 * hex digits) or its full id, looked up in that order.
 */
#ifndef CAIRN_IMAGE_H
#define CAIRN_IMAGE_H

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
 * Resolves a name to an image id (see above). Returns 0,
 * -ENOENT (with a message naming spec) or -EINVAL for an ambiguous prefix.
 */
int cairn_image_resolve(struct cairn_txn *t, const char *spec, struct cairn_id *id);

/* Tag names: 1..128 bytes of [A-Za-z0-9._-], not starting with '.' or '-'. */
int cairn_tag_check(const char *name);

#endif
