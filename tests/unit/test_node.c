/* SPDX-License-Identifier: MIT */
/*
 * test_node.c - node and content encodings: round trips, canonical form,
 * and decoders that reject garbled values without crashing.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "image.h"
#include "node.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static const struct cairn_xattr xattrs[] = {
	{ "security.capability", 19, "\x01\x00\x00\x02", 4 },
	{ "trusted.a", 9, "", 0 },
	{ "user.b", 6, "value", 5 },
};

static struct cairn_dirent dir_entries[] = {
	{ "a", 1, { { 1 } }, CAIRN_NODE_REG },
	{ "bin", 3, { { 3 } }, CAIRN_NODE_LNK },
	{ "b\xff", 2, { { 2 } }, CAIRN_NODE_DIR }, /* bytes order: 0xff after 'i' */
	{ "zz", 2, { { 4 } }, CAIRN_NODE_FIFO },
};

static void make_dir(struct cairn_node_build *n)
{
	memset(n, 0, sizeof(*n));
	n->type = CAIRN_NODE_DIR;
	n->mode = 01777;
	n->uid = 1;
	n->gid = 2;
	n->mtime_sec = -5;
	n->mtime_nsec = 999999999;
	n->xattrs = xattrs;
	n->nxattr = 3;
	n->entries = dir_entries;
	n->nentries = 4;
}

static void make_reg(struct cairn_node_build *n)
{
	memset(n, 0, sizeof(*n));
	n->type = CAIRN_NODE_REG;
	n->mode = 04755;
	n->uid = 1000;
	n->gid = 1000;
	n->mtime_sec = 1600000000;
	n->mtime_nsec = 123;
	n->nlink = 3;
	n->link_key.b[0] = 0xaa;
	n->size = 5ull << 30;
	n->content_kind = CAIRN_CONTENT_LIST;
	n->content.b[15] = 7;
	n->xattrs = xattrs;
	n->nxattr = 1;
}

Test(node, dir_round_trip)
{
	struct cairn_node_build n;
	struct cairn_buf b = { 0 };
	struct cairn_node_view v;
	struct cairn_dirent e;
	struct cairn_xattr x;
	uint32_t pos;

	make_dir(&n);
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	cr_assert_eq(v.type, CAIRN_NODE_DIR);
	cr_assert_eq(v.mode, 01777);
	cr_assert_eq(v.mtime_sec, -5);
	cr_assert_eq(v.mtime_nsec, 999999999);
	cr_assert_eq(v.nentries, 4);
	for (uint32_t i = 0; i < 4; i++) {
		cr_assert_eq(cairn_dir_entry(&v, i, &e), 0);
		cr_assert_eq(e.name_len, dir_entries[i].name_len);
		cr_assert_eq(memcmp(e.name, dir_entries[i].name, e.name_len), 0);
		cr_assert(cairn_id_eq(&e.id, &dir_entries[i].id));
		cr_assert_eq(cairn_dir_lookup(&v, dir_entries[i].name, dir_entries[i].name_len, &e,
					      &pos),
			     0);
		cr_assert_eq(pos, i);
	}
	cr_assert_eq(cairn_dir_lookup(&v, "b", 1, &e, &pos), -ENOENT);
	cr_assert_eq(pos, 1);
	cr_assert_eq(cairn_dir_lookup(&v, "zzz", 3, &e, &pos), -ENOENT);
	cr_assert_eq(pos, 4);
	cr_assert_eq(cairn_xattr_get(&v, "user.b", &x), 0);
	cr_assert_eq(x.value_len, 5);
	cr_assert_eq(memcmp(x.value, "value", 5), 0);
	cr_assert_eq(cairn_xattr_get(&v, "user.c", &x), -ENODATA);
	cairn_buf_release(&b);
}

Test(node, reg_round_trip)
{
	struct cairn_node_build n;
	struct cairn_buf b = { 0 };
	struct cairn_node_view v;

	make_reg(&n);
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	cr_assert_eq(v.size, 5ull << 30);
	cr_assert_eq(v.nlink, 3);
	cr_assert_eq(v.link_key.b[0], 0xaa);
	cr_assert_eq(v.content_kind, CAIRN_CONTENT_LIST);
	cr_assert_eq(v.content.b[15], 7);
	cr_assert_eq(v.mode, 04755);
	cairn_buf_release(&b);
}

Test(node, other_types_round_trip)
{
	static const uint8_t types[] = { CAIRN_NODE_LNK, CAIRN_NODE_CHR, CAIRN_NODE_BLK,
					 CAIRN_NODE_FIFO, CAIRN_NODE_SOCK, CAIRN_NODE_WHITEOUT };

	for (size_t i = 0; i < sizeof(types); i++) {
		struct cairn_node_build n = { .type = types[i], .mode = 0644, .nlink = 1 };
		struct cairn_buf b = { 0 };
		struct cairn_node_view v;

		n.target = "../x/y";
		n.target_len = 6;
		n.major = 259;
		n.minor = 1u << 20;
		cr_assert_eq(cairn_node_encode(&n, &b), 0, "type %u", types[i]);
		cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
		cr_assert_eq(v.type, types[i]);
		if (types[i] == CAIRN_NODE_LNK) {
			cr_assert_eq(v.target_len, 6);
			cr_assert_eq(memcmp(v.target, "../x/y", 6), 0);
		}
		if (types[i] == CAIRN_NODE_CHR || types[i] == CAIRN_NODE_BLK) {
			cr_assert_eq(v.major, 259);
			cr_assert_eq(v.minor, 1u << 20);
		}
		cairn_buf_release(&b);
	}
}

Test(node, canonical)
{
	struct cairn_node_build n;
	struct cairn_buf a = { 0 }, b = { 0 };
	struct cairn_id ia, ib;

	make_dir(&n);
	cr_assert_eq(cairn_node_encode(&n, &a), 0);
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
	cairn_hash(a.data, a.len, &ia);
	/* any metadata change changes the id */
	n.mtime_nsec--;
	b.len = 0;
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	cairn_hash(b.data, b.len, &ib);
	cr_assert_not(cairn_id_eq(&ia, &ib));
	cairn_buf_release(&a);
	cairn_buf_release(&b);
}

Test(node, encoder_refuses_non_canonical_input)
{
	struct cairn_node_build n;
	struct cairn_buf b = { 0 };
	struct cairn_dirent unsorted[] = {
		{ "b", 1, { { 1 } }, CAIRN_NODE_REG },
		{ "a", 1, { { 2 } }, CAIRN_NODE_REG },
	};
	struct cairn_dirent dup[] = {
		{ "a", 1, { { 1 } }, CAIRN_NODE_REG },
		{ "a", 1, { { 2 } }, CAIRN_NODE_REG },
	};
	struct cairn_dirent bad[] = { { "a/b", 3, { { 1 } }, CAIRN_NODE_REG } };
	struct cairn_dirent dots[] = { { "..", 2, { { 1 } }, CAIRN_NODE_DIR } };
	struct cairn_xattr xunsorted[] = { { "user.b", 6, "", 0 }, { "user.a", 6, "", 0 } };

	make_dir(&n);
	n.entries = unsorted;
	n.nentries = 2;
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	n.entries = dup;
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	n.entries = bad;
	n.nentries = 1;
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	n.entries = dots;
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	make_dir(&n);
	n.xattrs = xunsorted;
	n.nxattr = 2;
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	make_reg(&n);
	n.mode = 0100644; /* type bits do not belong in mode */
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	make_reg(&n);
	n.size = 0; /* an empty file must say so */
	cr_assert_eq(cairn_node_encode(&n, &b), -EINVAL);
	cairn_buf_release(&b);
}

/* Found by fuzz/fuzz_values: the strict parse took name blobs the encoder never writes. */
Test(node, strict_parse_refuses_non_canonical_name_blobs)
{
	struct cairn_node_build n;
	struct cairn_buf b = { 0 };
	struct cairn_node_view v;
	size_t dirents;
	uint8_t *d;

	make_dir(&n);
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	dirents = (size_t)(v.dirents - b.data);
	d = b.data + dirents;
	/* entry 1 ("bin") reads its name from offset 0, over entry 0's: "abi", still sorted */
	d[24 + 16] = 0;
	cr_assert_eq(cairn_node_parse(b.data, b.len, 0, &v), 0);
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), -EUCLEAN);
	d[24 + 16] = 1;
	/* a reserved byte set */
	d[23] = 1;
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), -EUCLEAN);
	d[23] = 0;
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	/* spare bytes after the names */
	cr_assert_eq(cairn_buf_append(&b, "x", 1), 0);
	d = b.data + dirents;
	CAIRN_SET(((struct cairn_dir_disk *)(d - 8))->names_len, v.names_len + 1);
	cr_assert_eq(cairn_node_parse(b.data, b.len, 0, &v), 0);
	cr_assert_eq(cairn_node_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), -EUCLEAN);
	cairn_buf_release(&b);
}

Test(node, truncated_values_are_rejected)
{
	struct cairn_node_build n;
	struct cairn_buf b = { 0 };
	struct cairn_node_view v;

	make_dir(&n);
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	for (size_t len = 0; len < b.len; len++)
		cr_assert_eq(cairn_node_parse(b.data, len, 0, &v), -EUCLEAN, "len %zu", len);
	make_reg(&n);
	b.len = 0;
	cr_assert_eq(cairn_node_encode(&n, &b), 0);
	for (size_t len = 0; len < b.len; len++)
		cr_assert_eq(cairn_node_parse(b.data, len, 0, &v), -EUCLEAN, "len %zu", len);
	cairn_buf_release(&b);
}

/* Walks everything a reader could touch in a view. */
static void touch_view(const struct cairn_node_view *v)
{
	struct cairn_dirent e;
	struct cairn_xattr x;
	size_t off = 0;
	volatile unsigned sum = 0;

	while (cairn_xattr_next(v, &off, &x) == 0)
		for (size_t i = 0; i < x.name_len + x.value_len; i++)
			sum += i < x.name_len ? (unsigned char)x.name[i]
					      : ((const uint8_t *)x.value)[i - x.name_len];
	if (v->type == CAIRN_NODE_DIR)
		for (uint32_t i = 0; i < v->nentries; i++)
			if (cairn_dir_entry(v, i, &e) == 0)
				for (size_t j = 0; j < e.name_len; j++)
					sum += (unsigned char)e.name[j];
	if (v->type == CAIRN_NODE_DIR)
		(void)cairn_dir_lookup(v, "bin", 3, &e, NULL);
	if (v->type == CAIRN_NODE_LNK)
		for (size_t i = 0; i < v->target_len; i++)
			sum += (unsigned char)v->target[i];
}

Test(node, random_mutations_never_crash)
{
	struct cairn_node_build n;
	struct cairn_buf orig = { 0 };
	int accepted = 0, rejected = 0;

	for (int kind = 0; kind < 2; kind++) {
		orig.len = 0;
		if (kind)
			make_dir(&n);
		else
			make_reg(&n);
		cr_assert_eq(cairn_node_encode(&n, &orig), 0);
		for (int round = 0; round < 20000; round++) {
			/* an exact-size heap copy so ASan sees any overrun */
			size_t len = orig.len;
			uint8_t *m;
			struct cairn_node_view v;
			int flips = 1 + (int)(rng() % 4);

			if (rng() % 8 == 0)
				len = rng() % (orig.len + 1);
			m = malloc(len ? len : 1);
			memcpy(m, orig.data, len);
			for (int f = 0; f < flips && len; f++)
				m[rng() % len] ^= (uint8_t)(1u << (rng() % 8));
			if (cairn_node_parse(m, len, 0, &v) == 0) {
				touch_view(&v);
				accepted++;
			} else {
				rejected++;
			}
			(void)cairn_node_parse(m, len, CAIRN_PARSE_STRICT, &v);
			free(m);
		}
	}
	cr_assert_gt(rejected, 1000);
	cr_log_info("mutations: %d accepted, %d rejected", accepted, rejected);
	cairn_buf_release(&orig);
}

Test(content, round_trip_and_find)
{
	struct cairn_extent_disk ext[3];
	struct cairn_buf b = { 0 };
	struct cairn_content_view v;
	struct cairn_extent e;
	const uint64_t ends[3] = { 65536, 5ull << 30, (5ull << 30) + 10 };

	memset(ext, 0, sizeof(ext));
	for (int i = 0; i < 3; i++) {
		CAIRN_SET(ext[i].end, ends[i]);
		if (i != 1)
			ext[i].id[0] = (uint8_t)(i + 1);
	}
	cr_assert_eq(cairn_content_encode(ext, 3, ends[2], &b), 0);
	cr_assert_eq(cairn_content_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	cr_assert_eq(v.count, 3);
	cr_assert_eq(cairn_content_find(&v, 0), 0);
	cr_assert_eq(cairn_content_find(&v, 65535), 0);
	cr_assert_eq(cairn_content_find(&v, 65536), 1);
	cr_assert_eq(cairn_content_find(&v, 5ull << 30), 2);
	cairn_content_extent(&v, 1, &e);
	cr_assert(e.hole);
	cr_assert_eq(e.start, 65536);
	cr_assert_eq(e.end, 5ull << 30);
	/* a data extent longer than any chunk is garbled */
	CAIRN_SET(ext[0].end, 8u << 20);
	b.len = 0;
	cr_assert_eq(cairn_content_encode(ext, 1, 8u << 20, &b), 0);
	cr_assert_eq(cairn_content_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), -EUCLEAN);
	/* truncations */
	for (size_t len = 0; len < b.len; len++)
		cr_assert_eq(cairn_content_parse(b.data, len, 0, &v), -EUCLEAN);
	/* a reserved byte (found by fuzz/fuzz_values) */
	CAIRN_SET(ext[0].end, CAIRN_ONE_CHUNK_MAX + 1);
	b.len = 0;
	cr_assert_eq(cairn_content_encode(ext, 1, CAIRN_ONE_CHUNK_MAX + 1, &b), 0);
	cr_assert_eq(cairn_content_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v), 0);
	b.data[3] = 1;
	cr_assert_eq(cairn_content_parse(b.data, b.len, 0, &v), -EUCLEAN);
	cairn_buf_release(&b);
}

/* Encodes extents given as (end, hole?) pairs and parses them strictly. */
static int parse_list(const uint64_t *ends, const bool *hole, uint32_t n)
{
	struct cairn_extent_disk ext[8];
	struct cairn_buf b = { 0 };
	struct cairn_content_view v;
	int ret;

	memset(ext, 0, sizeof(ext));
	for (uint32_t i = 0; i < n; i++) {
		CAIRN_SET(ext[i].end, ends[i]);
		if (!hole[i])
			ext[i].id[0] = (uint8_t)(i + 1);
	}
	cr_assert_eq(cairn_content_encode(ext, n, ends[n - 1], &b), 0);
	ret = cairn_content_parse(b.data, b.len, CAIRN_PARSE_STRICT, &v);
	cairn_buf_release(&b);
	return ret;
}

/* One list per file, whatever wrote it (format.h, "Content id"). */
Test(content, only_the_canonical_list_parses_strictly)
{
	const bool dhd[] = { false, true, false }, hh[] = { true, true }, d[] = { false };
	const bool h[] = { true };

	cr_assert_eq(parse_list((uint64_t[]){ 10, 8192, 8200 }, dhd, 3), -EUCLEAN,
		     "a hole must start at a block boundary");
	cr_assert_eq(parse_list((uint64_t[]){ 4096, 8000, 8200 }, dhd, 3), -EUCLEAN,
		     "a hole must end at a block boundary");
	cr_assert_eq(parse_list((uint64_t[]){ 4096, 8192, 8200 }, dhd, 3), 0);
	cr_assert_eq(parse_list((uint64_t[]){ 4096, 8192 }, hh, 2), -EUCLEAN,
		     "two holes in a row are one hole");
	cr_assert_eq(parse_list((uint64_t[]){ 8192 }, h, 1), 0, "a file that is one hole");
	cr_assert_eq(parse_list((uint64_t[]){ CAIRN_ONE_CHUNK_MAX }, d, 1), -EUCLEAN,
		     "a small file with no hole is one chunk, not a list");
	cr_assert_eq(parse_list((uint64_t[]){ CAIRN_ONE_CHUNK_MAX + 1 }, d, 1), 0);
}

Test(image, id_and_record)
{
	struct cairn_id layers[2] = { { { 1 } }, { { 2 } } }, root = { { 9 } }, a, b;
	struct cairn_buf rec = { 0 };
	struct cairn_image img;

	cairn_image_id(layers, 2, &root, &a);
	cairn_image_id(layers, 2, &root, &b);
	cr_assert(cairn_id_eq(&a, &b));
	cairn_image_id(layers, 1, &root, &b);
	cr_assert_not(cairn_id_eq(&a, &b));
	cr_assert_eq(cairn_image_encode(layers, 2, &root, 42, 1000, 7, "hello", &rec), 0);
	cr_assert_eq(cairn_image_parse(rec.data, rec.len, &img), 0);
	cr_assert_eq(img.nlayers, 2);
	cr_assert_eq(img.created_ns, 42);
	cr_assert_eq(img.msg_len, 5);
	cr_assert_eq(memcmp(img.msg, "hello", 5), 0);
	cr_assert(cairn_id_eq(&img.root, &root));
	for (size_t len = 0; len < rec.len; len++)
		cr_assert_eq(cairn_image_parse(rec.data, len, &img), -EUCLEAN);
	rec.data[2] = 1; /* a reserved byte: not what the encoder writes */
	cr_assert_eq(cairn_image_parse(rec.data, rec.len, &img), -EUCLEAN);
	cairn_buf_release(&rec);
}

Test(image, tag_names)
{
	cr_assert_eq(cairn_tag_check("debian-12.1_rc"), 0);
	cr_assert_neq(cairn_tag_check(""), 0);
	cr_assert_neq(cairn_tag_check("-x"), 0);
	cr_assert_neq(cairn_tag_check(".x"), 0);
	cr_assert_neq(cairn_tag_check("a/b"), 0);
	cr_assert_neq(cairn_tag_check("a:b"), 0);
}
