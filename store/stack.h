/* SPDX-License-Identifier: MIT */
/*
 * stack.h - a layer applied over a flattened tree: the tree of the image
 * one layer higher.
 *
 * A layer tree (tar or OCI layer, committed upper directory) may hold
 * WHITEOUT nodes (the base entry of that name is deleted) and directories
 * flagged CAIRN_NODE_OPAQUE (the base directory's contents are hidden).
 * Stacking it over a flattened base gives a flattened tree: no whiteouts,
 * no opaque flags. Any other layer entry replaces the base entry of its
 * name; a directory present in both merges recursively and keeps the layer
 * directory's attributes. A whiteout for a name the base lacks does
 * nothing. Subtrees the layer does not touch are shared by id, never
 * rewritten: the cost follows the layer, not the base.
 *
 * Hard links. A group is keyed by its first member's path and counts its
 * members inside the tree (format.h), so the result must be renamed where
 * a layer broke a group of the base: when the layer deletes or replaces
 * any member of a base group, every surviving member is re-encoded with
 * nlink = survivors and the key of the first survivor's path (a single
 * survivor becomes an ordinary file with nlink 1), and the directories
 * above them are rewritten. Groups of the layer keep their keys: all their
 * members survive, at the same paths. Base groups the layer does not touch
 * keep theirs. So the result is exactly the tree an import of the
 * flattened directory gives (same ids), and no two groups share a node id.
 * Finding the survivors reads the base tree outside the layer's paths, but
 * only when the layer broke a group.
 */
#ifndef CAIRN_STACK_H
#define CAIRN_STACK_H

#include <stdint.h>

#include "writer.h"

struct cairn_stack_result {
	struct cairn_id root;  /* the flattened tree */
	uint64_t nodes;        /* entries in it, the root included */
	uint64_t logical_size; /* regular file bytes, hard-link groups once */
};

/*
 * Applies the layer tree `layer` over the flattened tree `base` (NULL: no
 * base; the layer's whiteouts then do nothing and its opaque flags are
 * cleared). New directory and file nodes go through the writer w. Both
 * trees must be readable: call after cairn_writer_flush(w) when either was
 * just written. Returns 0, or -errno with a message (-EUCLEAN for a
 * damaged tree or a base that holds a whiteout).
 */
int cairn_stack(struct cairn_writer *w, const struct cairn_id *base, const struct cairn_id *layer,
		struct cairn_stack_result *res);

#endif
