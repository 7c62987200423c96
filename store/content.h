/* SPDX-License-Identifier: MIT */
/*
 * content.h - content ids: what a regular file's node names (format.h,
 * "Content").
 *
 * A file with no bytes, or of at most CAIRN_ONE_CHUNK_MAX bytes with no
 * hole, is named by the hash of its bytes (a one-chunk file by its chunk's
 * id). Any other file is a content list, named by the seeded hash of the
 * list itself: its size, each extent's end offset and chunk id, holes as
 * zero-id extents. So a content id is checked against its list alone, with
 * no chunk at hand (what a lazy pull needs), and making it costs one hash
 * of the list, never a second pass over the file's bytes; a hole costs one
 * extent, whatever its length.
 *
 * The list comes from cutting the file at fixed offsets into blocks of
 * CAIRN_HOLE_BLOCK: maximal runs of whole zero blocks are holes, the runs
 * between them data, each data run cut by the store's chunker from its
 * start. The writer does that while streaming; cairn_content_make() is the
 * whole definition in one call, over a buffer, for tests and fuzzers to
 * check the writer against.
 */
#ifndef CAIRN_CONTENT_H
#define CAIRN_CONTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker.h"
#include "util.h"

/* The id of a content list: its value as the contents database keeps it. */
void cairn_content_list_id(const void *val, size_t len, struct cairn_id *out);

/* True when p[0..len) is all zero bytes. */
bool cairn_all_zero(const void *p, size_t len);

/*
 * The content kind a file of these properties has: EMPTY for no bytes,
 * CHUNK for a file of at most CAIRN_ONE_CHUNK_MAX bytes with no hole block,
 * LIST otherwise.
 */
uint8_t cairn_content_kind_for(uint64_t size, bool sparse);

/*
 * What a store chunking with c makes of a file held in memory: its kind,
 * its content id and, when list is not NULL and the kind is LIST, its
 * content record (appended). The definition in one call. 0 or -ENOMEM.
 */
int cairn_content_make(const struct cairn_chunker *c, const void *data, uint64_t len,
		       uint8_t *kind, struct cairn_id *id, struct cairn_buf *list);

#endif
