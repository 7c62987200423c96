/* SPDX-License-Identifier: MIT */
/*
 * hidden.h - what an upper directory hides of a switch.
 *
 * A writable mount keeps its upper directory on top across upgrades and
 * rollbacks (overlayfs's rule): an entry the container copied up (a chmod
 * is enough, or an append), replaced, deleted or made opaque goes on
 * showing what it was, whatever the new image has at that path. This
 * module finds those entries: the ones of UPPER/tree that stand in front
 * of a path where two images differ. `cairn changes UPPER --against IMAGE`
 * lists them, and upgrade and rollback count them for each writable mount
 * they switch.
 */
#ifndef CAIRN_HIDDEN_H
#define CAIRN_HIDDEN_H

#include <stddef.h>

#include "store.h"

/* One upper entry that hides a change. Valid during the callback. */
struct hidden_entry {
	const char *path; /* "/a/b": the upper entry's path (NUL-terminated) */
	size_t path_len;
	const char *kind; /* what the upper has there: "metacopy" (metadata only, the
			   * old image's data), "copy" (its own data), "whiteout" (deleted),
			   * "opaque" (a directory hiding the image's), "renamed" (a renamed
			   * image directory), "directory" (its own attributes) */
	const char *change; /* what the images did at that path or below: "added",
			     * "removed", "modified" */
};

typedef int (*hidden_fn)(void *ctx, const struct hidden_entry *h);

/*
 * Walks the changes between the images old_image and new_image and calls
 * fn for each entry of the upper tree (tree_fd: UPPER/tree, never followed
 * through a symlink) that hides one, once per entry, in tree order.
 * Returns 0, what fn returned (non-zero stops), or -errno with a message.
 */
int hidden_entries(struct cairn_txn *t, int tree_fd, const struct cairn_id *old_image,
		   const struct cairn_id *new_image, hidden_fn fn, void *ctx);

/*
 * For upgrade and rollback: the entries of the upper directory upper_dir
 * that hide what the switch from old_image (the image the mount served) to
 * new_image changed, as one line for people ("its upper hides N paths this
 * switch changed: /a, /b, ... (cairn changes UPPER --against OLD)") into
 * buf, or "" when it hides none. Returns the count, or -errno.
 */
int hidden_summary(struct cairn_store *s, const char *upper_dir,
		   const struct cairn_id *old_image, const struct cairn_id *new_image, char *buf,
		   size_t len);

#endif
