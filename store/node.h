/* SPDX-License-Identifier: MIT */
/*
 * node.h - canonical node and content encodings (see format.h), and views
 * that read them in place.
 *
 * Encoding is canonical: cairn_node_encode() refuses unsorted or duplicate
 * directory entries and xattrs rather than sorting them silently, so one
 * tree has exactly one encoding. cairn_node_parse() checks every length
 * against the value's size, so a garbled value is -EUCLEAN, never a read
 * out of bounds; with CAIRN_PARSE_STRICT it also checks the canonical rules
 * (sorted, unique, valid names, names packed in entry order, reserved bytes
 * zero: exactly what the encoder writes), which costs a pass over the value.
 *
 * A view points into the value it was parsed from: valid as long as that
 * value is (for a value read from LMDB, until its transaction ends).
 */
#ifndef CAIRN_NODE_H
#define CAIRN_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct cairn_xattr {
	const char *name; /* not NUL-terminated in views; name_len bytes */
	size_t name_len;
	const void *value;
	size_t value_len;
};

struct cairn_dirent {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	struct cairn_id id;
	uint8_t type;
};

/* What a node holds, for encoding. Pointers are borrowed. */
struct cairn_node_build {
	uint8_t type;  /* enum cairn_node_type */
	uint8_t flags; /* enum cairn_node_flags */
	uint32_t mode; /* & 07777 */
	uint32_t uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t nlink;            /* 1, hard-link group size, or 0 for directories */
	struct cairn_id link_key;  /* when nlink > 1 */
	const struct cairn_xattr *xattrs; /* sorted by name */
	size_t nxattr;
	/* REG */
	uint64_t size;
	uint8_t content_kind;
	struct cairn_id content;
	/* LNK */
	const char *target;
	size_t target_len;
	/* CHR, BLK */
	uint32_t major, minor;
	/* DIR: sorted by name */
	const struct cairn_dirent *entries;
	size_t nentries;
};

/* Appends the canonical encoding of n to out. -EINVAL if n breaks a rule. */
int cairn_node_encode(const struct cairn_node_build *n, struct cairn_buf *out);

/* The order of directory entries and xattrs: bytes, then length (memcmp order). */
int cairn_name_cmp(const char *a, size_t al, const char *b, size_t bl);

/*
 * The key of a hard-link group whose first member (depth first, names in
 * order) is at path ("a/b", relative, no leading slash): XXH3-128 of
 * "cairn-link" || path. See format.h. Returns 0 or -ENOMEM.
 */
int cairn_link_key(const char *path, size_t len, struct cairn_id *out);

/* A parsed node: header fields decoded, variable parts located. */
struct cairn_node_view {
	uint8_t type, flags;
	uint32_t mode, uid, gid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	uint32_t nlink;
	struct cairn_id link_key; /* zero when nlink <= 1 */
	uint32_t nxattr;
	const uint8_t *xattrs;    /* start of the xattr records */
	size_t xattrs_len;
	/* REG */
	uint64_t size;
	uint8_t content_kind;
	struct cairn_id content;
	/* LNK */
	const char *target;
	size_t target_len;
	/* CHR, BLK */
	uint32_t major, minor;
	/* DIR */
	uint32_t nentries;
	const uint8_t *dirents;   /* nentries x struct cairn_dirent_disk */
	const uint8_t *names;
	uint32_t names_len;
};

enum cairn_parse_flags {
	CAIRN_PARSE_STRICT = 1u << 0,
};

int cairn_node_parse(const void *val, size_t len, unsigned flags, struct cairn_node_view *v);

/*
 * Fills n with everything v holds except directory entries (n->entries is
 * NULL), so a node can be re-encoded with a field changed. *xattrs is a
 * malloc'ed array the caller frees (NULL when there are none); it and n
 * point into v's value. Returns 0, -ENOMEM, or -EUCLEAN for damaged xattrs.
 */
int cairn_node_view_build(const struct cairn_node_view *v, struct cairn_node_build *n,
			  struct cairn_xattr **xattrs);

/* The i-th directory entry; -EUCLEAN if its name lies outside the blob. */
int cairn_dir_entry(const struct cairn_node_view *v, uint32_t i, struct cairn_dirent *out);

/*
 * Binary search by name. Returns 0 and fills out, -ENOENT, or -EUCLEAN. With
 * pos non-NULL, *pos is the index found or the insertion point.
 */
int cairn_dir_lookup(const struct cairn_node_view *v, const char *name, size_t len,
		     struct cairn_dirent *out, uint32_t *pos);

/*
 * Two directories' entries walked together in name order, one name at a
 * time: the one merge of sorted entries that diff, stack and the live
 * switch share. Either directory may be NULL (no entries).
 */
struct cairn_dir_merge {
	const struct cairn_node_view *a, *b;
	uint32_t i, j;
};

enum cairn_merge_side {
	CAIRN_MERGE_A = 1,    /* the name is only in a: *ea is filled */
	CAIRN_MERGE_B = 2,    /* only in b: *eb is filled */
	CAIRN_MERGE_BOTH = 3, /* in both: *ea and *eb are filled */
};

void cairn_dir_merge_init(struct cairn_dir_merge *m, const struct cairn_node_view *a,
			  const struct cairn_node_view *b);
/*
 * The next name: a cairn_merge_side (a bit mask: A | B), 0 past the last
 * name, or -EUCLEAN for a damaged entry (no message). The entries point
 * into the views.
 */
int cairn_dir_merge_next(struct cairn_dir_merge *m, struct cairn_dirent *ea,
			 struct cairn_dirent *eb);

/*
 * Xattr iteration: *off starts at 0; fills x and advances. Returns 0, -ENOENT
 * past the last one, or -EUCLEAN.
 */
int cairn_xattr_next(const struct cairn_node_view *v, size_t *off, struct cairn_xattr *x);

/* Looks one xattr up by its NUL-terminated name. 0, -ENODATA, or -EUCLEAN. */
int cairn_xattr_get(const struct cairn_node_view *v, const char *name, struct cairn_xattr *x);

/* st_mode (type bits and permission bits) of a node. */
uint32_t cairn_node_st_mode(const struct cairn_node_view *v);
/* S_IF* bits of a node type, or 0 for an unknown one. */
uint32_t cairn_type_st_mode(uint8_t type);
/* One letter for listings: - d l c b p s w. */
char cairn_type_char(uint8_t type);

/* Content extent lists. */
struct cairn_content_view {
	uint64_t size;
	uint32_t count;
	const uint8_t *extents; /* count x struct cairn_extent_disk */
	struct cairn_extent_disk one; /* backs a single-chunk file's view */
};

struct cairn_extent {
	uint64_t start, end;
	struct cairn_id id; /* zero for a hole */
	bool hole;
};

/* Appends a content value for extents (cumulative ends) to out. */
int cairn_content_encode(const struct cairn_extent_disk *ext, uint32_t count, uint64_t size,
			 struct cairn_buf *out);
int cairn_content_parse(const void *val, size_t len, unsigned flags,
			struct cairn_content_view *v);
/* A view for a CAIRN_CONTENT_CHUNK file: one extent, no record. */
void cairn_content_single(const struct cairn_id *chunk, uint64_t size,
			  struct cairn_content_view *v);
void cairn_content_extent(const struct cairn_content_view *v, uint32_t i,
			  struct cairn_extent *out);
/* Index of the extent holding offset (< size), by binary search. */
uint32_t cairn_content_find(const struct cairn_content_view *v, uint64_t offset);

#endif
