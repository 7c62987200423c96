/* SPDX-License-Identifier: MIT */
/*
 * image.c - image records and name resolution.
 */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <xxhash.h>

#include "platform.h"

void cairn_image_id(const struct cairn_id *layers, uint32_t n, const struct cairn_id *root,
		    struct cairn_id *out)
{
	static const char magic[] = "cairn-image";
	XXH3_state_t *st = XXH3_createState();
	XXH128_canonical_t c;
	uint8_t le[4];

	/* small and fixed: a state allocation failure is not worth an error path */
	if (!st)
		abort();
	XXH3_128bits_reset(st);
	XXH3_128bits_update(st, magic, sizeof(magic) - 1);
	cairn_put32(le, n);
	XXH3_128bits_update(st, le, sizeof(le));
	for (uint32_t i = 0; i < n; i++)
		XXH3_128bits_update(st, layers[i].b, CAIRN_ID_LEN);
	XXH3_128bits_update(st, root->b, CAIRN_ID_LEN);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	XXH3_freeState(st);
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
}

int cairn_image_encode(const struct cairn_id *layers, uint32_t n, const struct cairn_id *root,
		       int64_t created_ns, uint64_t logical_size, uint64_t nodes, const char *msg,
		       struct cairn_buf *out)
{
	struct cairn_image_disk h = { .version = CAIRN_FORMAT_VERSION };
	size_t ml = msg ? strlen(msg) : 0;
	int ret;

	if (ml > 65536)
		return cairn_err(-EINVAL, "the message is longer than 64 KiB");
	CAIRN_SET(h.nlayers, n);
	memcpy(h.root, root->b, CAIRN_ID_LEN);
	CAIRN_SET(h.created_ns, created_ns);
	CAIRN_SET(h.logical_size, logical_size);
	CAIRN_SET(h.nodes, nodes);
	CAIRN_SET(h.msg_len, (uint32_t)ml);
	if ((ret = cairn_buf_append(out, &h, sizeof(h))))
		return ret;
	for (uint32_t i = 0; i < n; i++)
		if ((ret = cairn_buf_append(out, layers[i].b, CAIRN_ID_LEN)))
			return ret;
	return cairn_buf_append(out, msg, ml);
}

int cairn_image_parse(const void *val, size_t len, struct cairn_image *img)
{
	struct cairn_image_disk h;

	if (len < sizeof(h))
		return -EUCLEAN;
	memcpy(&h, val, sizeof(h));
	img->nlayers = CAIRN_GET(h.nlayers);
	img->msg_len = CAIRN_GET(h.msg_len);
	if (h.version != CAIRN_FORMAT_VERSION || h.reserved[0] || h.reserved[1] || h.reserved[2] ||
	    img->nlayers == 0 ||
	    (uint64_t)img->nlayers * CAIRN_ID_LEN + img->msg_len != len - sizeof(h))
		return -EUCLEAN;
	memcpy(img->root.b, h.root, CAIRN_ID_LEN);
	img->created_ns = CAIRN_GET(h.created_ns);
	img->logical_size = CAIRN_GET(h.logical_size);
	img->nodes = CAIRN_GET(h.nodes);
	img->layers = (const uint8_t *)val + sizeof(h);
	img->msg = (const char *)img->layers + (size_t)img->nlayers * CAIRN_ID_LEN;
	return 0;
}

int cairn_image_get(struct cairn_txn *t, const struct cairn_id *id, struct cairn_image *img)
{
	const void *v;
	size_t vl;
	int ret = cairn_get(t, CAIRN_DBI_IMAGES, id->b, CAIRN_ID_LEN, &v, &vl);

	if (ret)
		return ret;
	ret = cairn_image_parse(v, vl, img);
	if (ret) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(id, hex);
		return cairn_err(ret, "image record %s is damaged", hex);
	}
	img->id = *id;
	return 0;
}

int cairn_tag_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return -EINVAL;
	}
	return 0;
}

static int resolve_prefix(struct cairn_txn *t, const char *spec, struct cairn_id *id)
{
	struct cairn_cursor *c;
	struct cairn_id prefix;
	const void *k;
	size_t kl;
	int digits, ret, found = 0;

	digits = cairn_id_parse_prefix(spec, &prefix);
	if (digits < 4)
		return cairn_err(-ENOENT, "no image named '%s'", spec);
	ret = cairn_cursor_open(t, CAIRN_DBI_IMAGES, &c);
	if (ret)
		return ret;
	ret = cairn_cursor_get(c, prefix.b, CAIRN_ID_LEN, false, &k, &kl, NULL, NULL);
	while (ret == 0 && kl == CAIRN_ID_LEN) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex((const struct cairn_id *)k, hex);
		if (strncasecmp(hex, spec, (size_t)digits) != 0)
			break;
		if (found++) {
			cairn_cursor_close(c);
			return cairn_err(-EINVAL, "'%s' names more than one image; give more digits",
					 spec);
		}
		memcpy(id->b, k, CAIRN_ID_LEN);
		ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, NULL, NULL);
	}
	cairn_cursor_close(c);
	if (ret && ret != -ENOENT)
		return ret;
	return found ? 0 : cairn_err(-ENOENT, "no image named '%s'", spec);
}

int cairn_image_resolve(struct cairn_txn *t, const char *spec, struct cairn_id *id)
{
	size_t n = strlen(spec);
	const void *v;
	size_t vl;
	int ret;

	const char *at = strrchr(spec, '@');
	struct cairn_platform p;

	if (at) {
		/* PLATFORM@GEN */
		struct cairn_generation g;
		char name[130], *end;
		unsigned long long gen;

		gen = strtoull(at + 1, &end, 10);
		if (at == spec || (size_t)(at - spec) >= sizeof(name) || !at[1] || *end || gen == 0)
			return cairn_err(-ENOENT, "no image named '%s' (PLATFORM@GENERATION)", spec);
		memcpy(name, spec, (size_t)(at - spec));
		name[at - spec] = '\0';
		ret = cairn_generation_get(t, name, gen, &g);
		if (ret == -ENOENT)
			return cairn_err(ret, "platform '%s' has no generation %llu", name, gen);
		if (ret)
			return ret;
		*id = g.image;
		return 0;
	}
	if (n == 0 || n > 128)
		return cairn_err(-ENOENT, "no image named '%s'", spec);
	ret = cairn_get(t, CAIRN_DBI_TAGS, spec, n, &v, &vl);
	if (ret == 0) {
		if (vl != CAIRN_ID_LEN)
			return cairn_err(-EUCLEAN, "tag '%s' is damaged", spec);
		memcpy(id->b, v, CAIRN_ID_LEN);
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	ret = cairn_platform_get(t, spec, &p);
	if (ret == 0) {
		*id = p.image;
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	return resolve_prefix(t, spec, id);
}
