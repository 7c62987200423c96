/* SPDX-License-Identifier: MIT */
/*
 * pack.h - creating and appending to pack files (format.h): what the
 * writer and gc's pack rewriting share. Reading chunks goes through the
 * chunk source (source.h), whose local implementation maps packs with
 * cairn_store_pack_map() (store.h).
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * Creates the next free pack file (its id above every pack file present,
 * taken with O_EXCL so concurrent writers never share one), writes its
 * header and makes it and its directory entry durable. Returns the fd
 * (write-only) and sets *id, or -errno with a message.
 */
int cairn_pack_create(struct cairn_store *s, uint32_t *id);

/* The highest pack id with a file in STORE/packs, or 0. */
uint32_t cairn_pack_max(struct cairn_store *s);

/* pwrite()s all of p at off, retrying short writes. 0 or -errno. */
int cairn_pack_write(int fd, const void *p, size_t len, uint64_t off);

#endif
