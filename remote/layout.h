/* SPDX-License-Identifier: MIT */
/*
 * layout.h - the format of a remote store: every object cairn keeps in a
 * bucket, its key and its encoding, in one place (README: "Remote stores").
 *
 * Keys, under the remote's PREFIX/:
 *
 *   cairn-remote                  marker: format version, id definition
 *   packs/ID.pack                 a pack of objects (immutable)
 *   packs/ID.idx                  its index (immutable; written after the pack)
 *   images/ID                     an image: its record, layers, the packs it needs
 *   tags/NAME                     a tag: an image id (mutable pointer)
 *   platforms/NAME/GEN            a platform's generation GEN (20 decimal digits):
 *                                 created once, with If-None-Match: *
 *   locks/push-RANDOM, locks/gc   who is pushing, who collects (gc --remote)
 *
 * IDs are 32 lowercase hex digits. Objects are content-addressed where they
 * can be (a pack is named by the XXH3-128 of its bytes, an image by its
 * image id, each object in a pack by its store id), so everything but the
 * pointers (tags, generations) is verified against its id by whoever reads
 * it; the pointers may be signed (Ed25519, sign.h).
 *
 * A pack holds nodes and content lists (a "meta" pack) or chunks (a "data"
 * pack), one after the other, each an entry header and its payload: a
 * node's or content list's value as the store keeps it, or a chunk's stored
 * payload (raw or zstd). A lazy read of one chunk is one ranged GET of its
 * entry. The index lists every entry (kind, id, offset, length), so a reader
 * finds an object without reading the pack.
 *
 * All integers are little-endian; every header starts with 8 magic bytes
 * and a version byte.
 */
#ifndef CAIRN_LAYOUT_H
#define CAIRN_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "util.h"

#define CAIRN_RFORMAT_VERSION 2u
#define CAIRN_RKEY_MAX 1024

#define CAIRN_RKEY_MARKER "cairn-remote"

/*
 * Marker: the remote's format, and what ids mean in it: the store format
 * and the chunking of the stores that push here. Content list ids cover
 * chunk ids (store/format.h, "Content"), so a store that chunks otherwise
 * would name the same files by other ids: it is refused, in one line.
 * (Version 1 markers had no chunking: refused as another layout.)
 */
#define CAIRN_RMARKER_MAGIC "cairnrm"
struct cairn_rmarker_disk {
	char magic[8];
	uint8_t version;     /* CAIRN_RFORMAT_VERSION */
	uint8_t hash_algo;   /* CAIRN_HASH_XXH3_128 */
	uint16_t reserved;
	uint32_t id_format;  /* CAIRN_STORE_FORMAT of the stores that push here */
	uint32_t chunk_min;  /* their chunking (store/format.h, struct cairn_meta_disk) */
	uint32_t chunk_avg;
	uint32_t chunk_max;
	uint32_t hole_block;
	uint64_t gear_seed;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_rmarker_disk) == 40, "marker layout");

struct cairn_store_params;
/* The marker of a remote for stores made with p. */
void cairn_rmarker_init(struct cairn_rmarker_disk *m, const struct cairn_store_params *p);
/*
 * 0, or -EPROTO with a message when a store made with p cannot use the
 * remote (another layout, store format or chunking).
 */
int cairn_rmarker_check(const void *data, size_t len, const struct cairn_store_params *p);

/* Object kinds in packs. */
enum cairn_rkind {
	CAIRN_RKIND_CHUNK = 1,
	CAIRN_RKIND_NODE = 2,
	CAIRN_RKIND_CONTENT = 3,
};

/* Pack: header, then entries. */
#define CAIRN_RPACK_MAGIC "cairnrp"
struct cairn_rpack_header {
	char magic[8];
	uint8_t version;
	uint8_t reserved[3];
	uint32_t count;      /* entries */
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_rpack_header) == 16, "pack header layout");

struct cairn_rentry {
	uint8_t kind;        /* enum cairn_rkind */
	uint8_t codec;       /* chunks: enum cairn_codec; others 0 (raw) */
	uint8_t reserved[2];
	uint32_t raw_len;    /* chunks: decoded length; others: len */
	uint32_t len;        /* payload bytes after this header */
	uint32_t reserved2;
	uint8_t id[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_rentry) == 32, "pack entry layout");

/* Pack index: header, then count records sorted by (kind, id). */
#define CAIRN_RIDX_MAGIC "cairnri"
struct cairn_ridx_header {
	char magic[8];
	uint8_t version;
	uint8_t reserved[3];
	uint32_t count;
	uint8_t pack[CAIRN_ID_LEN];  /* the pack it indexes */
	uint64_t pack_size;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_ridx_header) == 40, "index header layout");

struct cairn_ridx_rec {
	uint8_t kind;
	uint8_t reserved[3];
	uint32_t len;        /* the entry's bytes, header included */
	uint64_t offset;     /* of the entry's header in the pack */
	uint8_t id[CAIRN_ID_LEN];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_ridx_rec) == 32, "index record layout");

#define CAIRN_RPACK_MAX (1ull << 32) /* no pack is larger */

/*
 * Image object: header, the image record exactly as the store keeps it
 * (format.h, struct cairn_image_disk ...), nlayers layer sources (one byte
 * each, enum cairn_layer_source, bottom first), then npacks pack ids: the
 * packs that hold every object the image reaches. The image id is checked
 * against the record (layers and root) by whoever reads it.
 */
#define CAIRN_RIMAGE_MAGIC "cairnim"
struct cairn_rimage_header {
	char magic[8];
	uint8_t version;
	uint8_t reserved[3];
	uint32_t record_len;
	uint32_t nlayers;
	uint32_t npacks;
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_rimage_header) == 24, "image object layout");

/*
 * Pointer (a tag or a platform generation): header, then the name. The
 * signature (when flags has CAIRN_RPTR_SIGNED) is Ed25519 over the
 * canonical message of sign.h: the kind, the name, the generation, the
 * image id and the time, so a signed pointer cannot be moved to another
 * name or generation.
 */
#define CAIRN_RPTR_MAGIC "cairnpt"
enum cairn_rptr_kind {
	CAIRN_RPTR_TAG = 1,
	CAIRN_RPTR_GENERATION = 2,
};
enum cairn_rptr_flags {
	CAIRN_RPTR_SIGNED = 1u << 0,
};
struct cairn_rptr_disk {
	char magic[8];
	uint8_t version;
	uint8_t kind;        /* enum cairn_rptr_kind */
	uint8_t flags;       /* enum cairn_rptr_flags */
	uint8_t action;      /* generations: enum cairn_action (upgrade, rollback) */
	uint16_t name_len;
	uint16_t reserved;
	uint64_t generation; /* generations; 0 for a tag */
	uint8_t image[CAIRN_ID_LEN];
	int64_t time_ns;
	uint8_t signature[64];
} __attribute__((packed));
_Static_assert(sizeof(struct cairn_rptr_disk) == 112, "pointer layout");

/* A decoded pointer. */
struct cairn_rptr {
	uint8_t kind, action;
	bool is_signed;
	char name[130];
	uint64_t generation;
	struct cairn_id image;
	int64_t time_ns;
	uint8_t signature[64];
};

int cairn_rptr_encode(const struct cairn_rptr *p, struct cairn_buf *out);
/* Parses a pointer; -EUCLEAN with a message when it is damaged. */
int cairn_rptr_parse(const void *data, size_t len, struct cairn_rptr *p);
/* The bytes a pointer's signature covers, into out (appended). */
int cairn_rptr_message(const struct cairn_rptr *p, struct cairn_buf *out);

/* Keys (PREFIX/ not included). out holds CAIRN_RKEY_MAX bytes. */
void cairn_rkey_pack(const struct cairn_id *pack, bool idx, char *out);
void cairn_rkey_image(const struct cairn_id *image, char *out);
int cairn_rkey_tag(const char *name, char *out);
int cairn_rkey_generation(const char *platform, uint64_t gen, char *out);
/* "platforms/NAME/": the prefix of a platform's generations. */
int cairn_rkey_platform(const char *platform, char *out);

/*
 * A key listed under packs/ or images/: "ID.pack", "ID.idx" or "ID" after
 * its folder. Returns 0 and fills id, -EINVAL for any other name.
 */
int cairn_rkey_parse_id(const char *rest, const char *suffix, struct cairn_id *id);

#endif
