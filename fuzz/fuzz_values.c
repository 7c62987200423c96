/* SPDX-License-Identifier: MIT */
/*
 * fuzz_values.c - libFuzzer harness for the decoders of values read from a
 * store: nodes (views, directory entries and lookups, xattrs), content
 * lists, image records, chunk index records and pack entries.
 *
 * The first byte picks the decoder (enum kind), the rest is the value.
 * ASan and UBSan catch reads out of bounds; the harness checks what the
 * formats promise besides:
 * - a strict parse accepts exactly the encodings the encoder writes: a
 *   node that parses strictly re-encodes to the same bytes, and a node the
 *   encoder reproduces parses strictly (one tree, one encoding);
 * - what parses strictly parses without the strict checks, to the same view;
 * - a lenient view is safe to use whole: every xattr record is found, every
 *   entry either decodes or is refused, lookups and extent searches stay in
 *   range;
 * - a strictly parsed directory finds each entry by name at its index and
 *   reports the right insertion point for a missing name; a strictly parsed
 *   content list finds the extent holding each offset;
 * - a decoded chunk has its header's length and, when checked, its id.
 */
#include <stdio.h>

#include "chunk.h"
#include "image.h"
#include "node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum kind {
	KIND_NODE,
	KIND_CONTENT,
	KIND_IMAGE,
	KIND_CHUNK_INDEX,
	KIND_PACK_ENTRY,
	KIND_COUNT,
};

#define require(cond, what)                                                         \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "fuzz_values: %s (%s:%d)\n", what, __FILE__, \
				__LINE__);                                          \
			abort();                                                    \
		}                                                                   \
	} while (0)

static volatile uint8_t sink;

/* Reads every byte, so ASan sees a view that points past its value. */
static void consume(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t x = 0;

	for (size_t i = 0; i < len; i++)
		x ^= b[i];
	sink ^= x;
}

/* --- nodes --------------------------------------------------------------- */

static void check_xattrs(const struct cairn_node_view *v)
{
	struct cairn_xattr x, y;
	char name[CAIRN_XATTR_NAME_MAX + 1];
	uint32_t count = 0;
	size_t off = 0;
	int ret;

	while ((ret = cairn_xattr_next(v, &off, &x)) == 0) {
		consume(x.name, x.name_len);
		consume(x.value, x.value_len);
		count++;
		if (x.name_len == 0 || x.name_len > CAIRN_XATTR_NAME_MAX ||
		    memchr(x.name, '\0', x.name_len))
			continue;
		memcpy(name, x.name, x.name_len);
		name[x.name_len] = '\0';
		require(cairn_xattr_get(v, name, &y) == 0 && y.name_len == x.name_len &&
				(const uint8_t *)y.name <= (const uint8_t *)x.name,
			"an xattr the iteration returned is not found by name");
	}
	/* the parse measured exactly nxattr records */
	require(ret == -ENOENT && count == v->nxattr, "xattr iteration disagrees with nxattr");
	cairn_xattr_get(v, "user.fuzz", &y);
}

/* The entries of a directory; strict: sorted, so lookups must find them. */
static void check_dir(const struct cairn_node_view *v, bool strict)
{
	struct cairn_dirent e, f;
	char name[CAIRN_NAME_MAX + 1];
	uint32_t pos;
	int ret;

	for (uint32_t i = 0; i < v->nentries; i++) {
		ret = cairn_dir_entry(v, i, &e);
		require(!strict || ret == 0, "a strictly parsed entry does not decode");
		if (ret) {
			require(ret == -EUCLEAN, "cairn_dir_entry: an error other than -EUCLEAN");
			continue;
		}
		consume(e.name, e.name_len);
		ret = cairn_dir_lookup(v, e.name, e.name_len, &f, &pos);
		if (!strict) {
			require(ret == 0 || ret == -ENOENT || ret == -EUCLEAN,
				"cairn_dir_lookup: an unexpected error");
			require(ret == -EUCLEAN || pos <= v->nentries,
				"cairn_dir_lookup: position out of range");
			continue;
		}
		require(ret == 0 && pos == i && f.name_len == e.name_len && f.type == e.type &&
				cairn_id_eq(&f.id, &e.id),
			"a strictly parsed directory does not find its entry by name");
		/* name + NUL sorts right after name and before every other name */
		memcpy(name, e.name, e.name_len);
		name[e.name_len] = '\0';
		ret = cairn_dir_lookup(v, name, e.name_len + 1, NULL, &pos);
		require(ret == -ENOENT && pos == i + 1, "a missing name's insertion point is wrong");
	}
	ret = cairn_dir_lookup(v, "", 0, NULL, &pos);
	require(ret != 0 || !strict, "a strictly parsed directory has an empty name");
	require(ret == -EUCLEAN || pos <= v->nentries, "lookup position out of range");
}

/*
 * Encodes the node a lenient view describes. Returns true when that gives
 * back exactly val: the value is in canonical form.
 */
static bool reencodes(const struct cairn_node_view *v, const uint8_t *val, size_t len)
{
	struct cairn_node_build b = {
		.type = v->type, .flags = v->flags, .mode = v->mode, .uid = v->uid,
		.gid = v->gid, .mtime_sec = v->mtime_sec, .mtime_nsec = v->mtime_nsec,
		.nlink = v->nlink, .link_key = v->link_key, .size = v->size,
		.content_kind = v->content_kind, .content = v->content, .target = v->target,
		.target_len = v->target_len, .major = v->major, .minor = v->minor,
	};
	cleanup_free struct cairn_xattr *xs = calloc(v->nxattr ? v->nxattr : 1, sizeof(*xs));
	cleanup_free struct cairn_dirent *es = calloc(v->nentries ? v->nentries : 1, sizeof(*es));
	struct cairn_buf out = { 0 };
	size_t off = 0;
	bool same;

	require(xs && es, "out of memory");
	for (uint32_t i = 0; i < v->nxattr; i++)
		if (cairn_xattr_next(v, &off, &xs[i]))
			return false;
	for (uint32_t i = 0; i < v->nentries; i++)
		if (cairn_dir_entry(v, i, &es[i]))
			return false;
	b.xattrs = xs;
	b.nxattr = v->nxattr;
	b.entries = es;
	b.nentries = v->nentries;
	same = cairn_node_encode(&b, &out) == 0 && out.len == len && !memcmp(out.data, val, len);
	cairn_buf_release(&out);
	return same;
}

static void check_node(const uint8_t *p, size_t n)
{
	struct cairn_node_view v, s;
	int loose = cairn_node_parse(p, n, 0, &v);
	int strict = cairn_node_parse(p, n, CAIRN_PARSE_STRICT, &s);

	require(loose == 0 || loose == -EUCLEAN, "cairn_node_parse: not 0 nor -EUCLEAN");
	require(strict == 0 || strict == -EUCLEAN, "cairn_node_parse: not 0 nor -EUCLEAN");
	if (loose) {
		require(strict, "the strict parse accepts what the lenient one refuses");
		return;
	}
	if (!strict)
		require(s.type == v.type && s.nxattr == v.nxattr && s.xattrs_len == v.xattrs_len &&
				s.nentries == v.nentries && s.names_len == v.names_len &&
				s.size == v.size && s.target_len == v.target_len,
			"the strict and lenient parses give different views");
	sink ^= (uint8_t)cairn_node_st_mode(&v) ^ (uint8_t)cairn_type_char(v.type);
	check_xattrs(&v);
	if (v.type == CAIRN_NODE_LNK)
		consume(v.target, v.target_len);
	if (v.type == CAIRN_NODE_DIR)
		check_dir(&v, strict == 0);
	require(reencodes(&v, p, n) == (strict == 0),
		strict ? "the encoder writes a value the strict parse refuses"
		       : "a strictly parsed node is not in canonical form");
}

/* --- content lists -------------------------------------------------------- */

static void check_find(const struct cairn_content_view *v, uint64_t off, bool strict)
{
	struct cairn_extent e;
	uint32_t i = cairn_content_find(v, off);

	require(i < v->count, "cairn_content_find: index out of range");
	cairn_content_extent(v, i, &e);
	if (strict && off < v->size)
		require(e.start <= off && off < e.end, "the extent found does not hold the offset");
}

static void check_content(const uint8_t *p, size_t n)
{
	struct cairn_content_view v, s;
	struct cairn_extent e;
	struct cairn_buf out = { 0 };
	int loose = cairn_content_parse(p, n, 0, &v);
	int strict = cairn_content_parse(p, n, CAIRN_PARSE_STRICT, &s);
	uint64_t prev = 0;

	require(loose == 0 || loose == -EUCLEAN, "cairn_content_parse: not 0 nor -EUCLEAN");
	if (loose) {
		require(strict, "the strict parse accepts what the lenient one refuses");
		return;
	}
	require(v.count > 0, "a content list without extents");
	for (uint32_t i = 0; i < v.count; i++) {
		cairn_content_extent(&v, i, &e);
		require(e.start <= e.end, "an extent ends before it starts");
		require(strict || e.start == prev, "strictly parsed extents do not follow each other");
		prev = e.end;
	}
	require(prev == v.size, "the last extent does not end at the size");
	check_find(&v, 0, !strict);
	check_find(&v, v.size / 2, !strict);
	check_find(&v, v.size ? v.size - 1 : 0, !strict);
	check_find(&v, v.size, !strict);
	check_find(&v, UINT64_MAX, !strict);
	if (n >= 8) /* an offset the input picks, within the file when it can be */
		check_find(&v, v.size == UINT64_MAX ? cairn_le64(p + n - 8)
						    : cairn_le64(p + n - 8) % (v.size + 1),
			   !strict);
	if (strict)
		return;
	require(cairn_content_encode((const struct cairn_extent_disk *)v.extents, v.count, v.size,
				     &out) == 0 &&
			out.len == n && !memcmp(out.data, p, n),
		"a strictly parsed content list is not in canonical form");
	cairn_buf_release(&out);
}

/* --- image records, chunk index records, pack entries --------------------- */

static void check_image(const uint8_t *p, size_t n)
{
	struct cairn_image img;
	struct cairn_buf out = { 0 };
	struct cairn_id id;
	cleanup_free char *msg = NULL;
	cleanup_free struct cairn_id *layers = NULL;

	if (cairn_image_parse(p, n, &img))
		return;
	require(img.nlayers > 0, "an image without layers");
	consume(img.layers, (size_t)img.nlayers * CAIRN_ID_LEN);
	consume(img.msg, img.msg_len);
	layers = malloc((size_t)img.nlayers * sizeof(*layers));
	require(layers, "out of memory");
	memcpy(layers, img.layers, (size_t)img.nlayers * CAIRN_ID_LEN);
	cairn_image_id(layers, img.nlayers, &img.root, &id);
	/* the record re-encodes to its own bytes (a message holding a NUL cannot) */
	if (img.msg_len > 65536 || memchr(img.msg, '\0', img.msg_len))
		return;
	msg = strndup(img.msg, img.msg_len);
	require(msg, "out of memory");
	require(cairn_image_encode(layers, img.nlayers, &img.root, img.created_ns, img.logical_size,
				   img.nodes, msg, &out) == 0 &&
			out.len == n && !memcmp(out.data, p, n),
		"an image record does not re-encode to its own bytes");
	cairn_buf_release(&out);
}

static void check_chunk_index(const uint8_t *p, size_t n)
{
	struct cairn_chunk_ref ref;
	uint32_t raw_len;
	uint8_t flags;
	int ret = cairn_chunk_parse(p, n, &ref);

	require(ret == 0 || ret == -EUCLEAN, "cairn_chunk_parse: not 0 nor -EUCLEAN");
	require((cairn_chunk_header(p, n, &raw_len, &flags) == 0) == (ret == 0),
		"cairn_chunk_header disagrees with cairn_chunk_parse");
	if (ret)
		return;
	require(ref.raw_len > 0 && ref.raw_len <= CAIRN_CHUNK_MAX_LIMIT && raw_len == ref.raw_len &&
			flags == ref.flags,
		"a chunk index record with a length out of range");
	require(ref.codec != CAIRN_CODEC_RAW || ref.len == ref.raw_len,
		"a raw chunk whose stored length is not its length");
}

/* First byte: bit 0 asks for the check against the entry's own id. */
static void check_pack_entry(const uint8_t *p, size_t n)
{
	static uint8_t *out;
	static struct cairn_zctx z;
	struct cairn_pack_entry h;
	struct cairn_id id, got;
	bool verify;
	long r;

	if (n < 1)
		return;
	verify = p[0] & 1;
	p++;
	n--;
	if (!out)
		out = malloc(CAIRN_CHUNK_MAX_LIMIT);
	require(out, "out of memory");
	if (n >= sizeof(h)) {
		memcpy(&h, p, sizeof(h));
		memcpy(id.b, h.id, CAIRN_ID_LEN);
	} else {
		verify = false;
	}
	r = cairn_chunk_decode_entry(&z, verify ? &id : NULL, true, p, n, out,
				     CAIRN_CHUNK_MAX_LIMIT);
	require(r >= 0 || r == -EIO || r == -ENOMEM, "cairn_chunk_decode_entry: unexpected error");
	if (r < 0)
		return;
	require(n >= sizeof(h) && (uint64_t)r == CAIRN_GET(h.raw_len),
		"a decoded chunk's length is not its header's");
	consume(out, (size_t)r);
	if (verify) {
		cairn_hash(out, (size_t)r, &got);
		require(cairn_id_eq(&got, &id), "a checked chunk does not hash to its id");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % KIND_COUNT) {
	case KIND_NODE:
		check_node(data + 1, size - 1);
		break;
	case KIND_CONTENT:
		check_content(data + 1, size - 1);
		break;
	case KIND_IMAGE:
		check_image(data + 1, size - 1);
		break;
	case KIND_CHUNK_INDEX:
		check_chunk_index(data + 1, size - 1);
		break;
	case KIND_PACK_ENTRY:
		check_pack_entry(data + 1, size - 1);
		break;
	}
	cairn_err_clear();
	return 0;
}
