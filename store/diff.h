/* SPDX-License-Identifier: MIT */
/*
 * diff.h - what changed between two trees: paths added, removed and
 * modified, and for each modified path which attributes differ.
 *
 * The one idea: trees are Merkle trees, so two entries with the same node id
 * are the same subtree, whatever its size, and are skipped without reading
 * it. The engine merge-walks the two sorted entry lists of each directory
 * whose id differs, and descends only where ids differ, so its cost grows
 * with the change and the width of the directories on the way to it, not
 * with the tree. A node's metadata and its content id sit side by side in
 * the node, so "the bytes changed" and "only the mode changed" are told
 * apart from the two nodes alone, without reading any content.
 *
 * Changes are reported in tree order (depth first, names in byte order; a
 * directory before what is below it), one callback per path.
 */
#ifndef CAIRN_DIFF_H
#define CAIRN_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"
#include "store.h"

enum cairn_diff_kind {
	CAIRN_DIFF_ADDED = 1,    /* only in the new tree */
	CAIRN_DIFF_REMOVED = 2,  /* only in the old tree */
	CAIRN_DIFF_MODIFIED = 3, /* in both, and different */
};

/* What differs between the two nodes of a modified path (bits). */
enum cairn_diff_what {
	CAIRN_DIFF_TYPE = 1u << 0,    /* e.g. a file became a directory */
	CAIRN_DIFF_CONTENT = 1u << 1, /* a regular file's bytes */
	CAIRN_DIFF_MODE = 1u << 2,    /* permission bits (setuid, setgid, sticky too) */
	CAIRN_DIFF_OWNER = 1u << 3,   /* uid or gid */
	CAIRN_DIFF_MTIME = 1u << 4,
	CAIRN_DIFF_XATTRS = 1u << 5,  /* any xattr added, removed or changed (ACLs, caps) */
	CAIRN_DIFF_TARGET = 1u << 6,  /* a symlink's target */
	CAIRN_DIFF_DEVICE = 1u << 7,  /* a device's major or minor */
	CAIRN_DIFF_LINKS = 1u << 8,   /* hard-link group: joined, left, or its size or name */
	CAIRN_DIFF_OPAQUE = 1u << 9,  /* a layer directory's opaque flag */
};
#define CAIRN_DIFF_WHAT_COUNT 10

/* The name of one bit ("type", "content", ...), or NULL for an unknown one. */
const char *cairn_diff_what_name(unsigned bit);

/*
 * One change. Pointers are valid during the callback only.
 *
 * A directory is reported as modified only when its own attributes differ
 * (what != 0); entries that changed below it are reported on their own. A
 * path whose type changed is modified with CAIRN_DIFF_TYPE, plus whichever
 * of mode, owner, mtime and xattrs differ too; the type-specific attributes
 * (content, target, device, links) are not compared across types.
 */
struct cairn_diff_change {
	enum cairn_diff_kind kind;
	unsigned what;                /* MODIFIED: enum cairn_diff_what bits; else 0 */
	const char *path;             /* "/a/b" ("/" for the root), NUL-terminated */
	size_t path_len;
	/* the two sides: old is NULL when added, new is NULL when removed */
	const struct cairn_id *old_id, *new_id;
	const struct cairn_node_view *old, *new;
};

/*
 * Called once per change. Returns 0 to go on, CAIRN_DIFF_PRUNE to not report
 * anything below this path (a directory), or -errno to stop the diff with
 * that error.
 */
#define CAIRN_DIFF_PRUNE 1
typedef int (*cairn_diff_fn)(void *ctx, const struct cairn_diff_change *c);

enum cairn_diff_flags {
	/*
	 * Also report every entry below a directory that was added or removed
	 * (or that replaced, or was replaced by, a non-directory), each as
	 * added or removed. Without it such a directory is one change.
	 */
	CAIRN_DIFF_EXPAND = 1u << 0,
};

/* What a diff cost: the figures that show it skipped identical subtrees. */
struct cairn_diff_stats {
	uint64_t nodes_read;       /* nodes read from the store */
	uint64_t entries_visited;  /* directory entries the merge (and expansion) went past */
	uint64_t changes;          /* callbacks made */
};

/*
 * Compares the tree rooted at old_root with the one at new_root (node ids,
 * normally two images' flattened roots) and calls fn for each change, in
 * tree order. stats may be NULL. Returns 0, or -errno with a message
 * (a missing or damaged node is -EUCLEAN naming it; a tree deeper than
 * CAIRN_DEPTH_MAX is -ELOOP), or what fn returned.
 */
int cairn_diff_trees(struct cairn_txn *t, const struct cairn_id *old_root,
		     const struct cairn_id *new_root, unsigned flags, cairn_diff_fn fn, void *ctx,
		     struct cairn_diff_stats *stats);

/*
 * The attributes that differ between two nodes (enum cairn_diff_what bits),
 * 0 when they are the same filesystem object. Directory entries are not
 * compared: that is what cairn_diff_trees() descends for.
 */
unsigned cairn_diff_nodes(const struct cairn_node_view *a, const struct cairn_node_view *b);

#endif
