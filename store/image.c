/* SPDX-License-Identifier: MIT */
/*
 * image.c - image records, and the verbs that name images: resolution,
 * tags, removal (image.h). Every write here runs in one naming
 * transaction (cairn_naming_begin/commit, below): the one place where
 * naming meets gc.
 */
#include "image.h"

#include <ctype.h>
#include <stdio.h>
#include <xxhash.h>

#include "platform.h"
#include "store-internal.h"

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

struct image_each {
	int (*fn)(const struct cairn_image *img, void *arg);
	void *arg;
};

static int image_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct image_each *ie = arg;
	struct cairn_image img;

	if (kl != CAIRN_ID_LEN || cairn_image_parse(v, vl, &img))
		return 0; /* fsck reports it */
	memcpy(img.id.b, k, CAIRN_ID_LEN);
	return ie->fn(&img, ie->arg);
}

int cairn_image_each(struct cairn_txn *t, int (*fn)(const struct cairn_image *img, void *arg),
		     void *arg)
{
	struct image_each ie = { fn, arg };

	return cairn_table_each(t, CAIRN_DBI_IMAGES, image_one, &ie);
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

int cairn_tag_get(struct cairn_txn *t, const char *name, struct cairn_id *id)
{
	size_t n = strlen(name);
	const void *v;
	size_t vl;
	int ret;

	if (n == 0 || n > CAIRN_TAG_MAX)
		return -ENOENT;
	ret = cairn_get(t, CAIRN_DBI_TAGS, name, n, &v, &vl);
	if (ret)
		return ret;
	if (vl != CAIRN_ID_LEN)
		return cairn_err(-EUCLEAN, "tag '%s' is damaged", name);
	memcpy(id->b, v, CAIRN_ID_LEN);
	return 0;
}

struct tag_each {
	int (*fn)(const char *name, size_t len, const struct cairn_id *image, void *arg);
	void *arg;
};

static int tag_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct tag_each *te = arg;
	struct cairn_id id;

	if (vl != CAIRN_ID_LEN)
		return 0; /* fsck reports it */
	memcpy(id.b, v, CAIRN_ID_LEN);
	return te->fn(k, kl, &id, te->arg);
}

int cairn_tag_each(struct cairn_txn *t,
		   int (*fn)(const char *name, size_t len, const struct cairn_id *image, void *arg),
		   void *arg)
{
	struct tag_each te = { fn, arg };

	return cairn_table_each(t, CAIRN_DBI_TAGS, tag_one, &te);
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

/* PLATFORM@GEN */
static int resolve_generation(struct cairn_txn *t, const char *spec, const char *at,
			      struct cairn_name *out)
{
	struct cairn_generation g;
	char *end;
	unsigned long long gen;
	int ret;

	gen = strtoull(at + 1, &end, 10);
	if (at == spec || (size_t)(at - spec) > CAIRN_TAG_MAX || !at[1] || *end || gen == 0 ||
	    at[1] < '0' || at[1] > '9')
		return cairn_err(-ENOENT, "no image named '%s' (PLATFORM@GENERATION)", spec);
	memcpy(out->platform, spec, (size_t)(at - spec));
	out->platform[at - spec] = '\0';
	ret = cairn_generation_get(t, out->platform, gen, &g);
	if (ret == -ENOENT)
		return cairn_err(ret, "platform '%s' has no generation %llu", out->platform, gen);
	if (ret)
		return ret;
	out->kind = CAIRN_NAME_GENERATION;
	out->image = g.image;
	out->generation = gen;
	return 0;
}

int cairn_name_resolve(struct cairn_txn *t, const char *spec, struct cairn_name *out)
{
	const char *at = strrchr(spec, '@');
	size_t n = strlen(spec);
	struct cairn_platform p;
	int ret;

	memset(out, 0, sizeof(*out));
	if (at)
		return resolve_generation(t, spec, at, out);
	if (n == 0 || n > CAIRN_TAG_MAX)
		return cairn_err(-ENOENT, "no image named '%s'", spec);
	ret = cairn_tag_get(t, spec, &out->image);
	if (ret == 0) {
		out->kind = CAIRN_NAME_TAG;
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	ret = cairn_platform_get(t, spec, &p);
	if (ret == 0) {
		out->kind = CAIRN_NAME_PLATFORM;
		out->image = p.image;
		out->generation = p.generation;
		memcpy(out->platform, spec, n + 1);
		return 0;
	}
	if (ret != -ENOENT)
		return ret;
	out->kind = CAIRN_NAME_ID;
	return resolve_prefix(t, spec, &out->image);
}

int cairn_image_resolve(struct cairn_txn *t, const char *spec, struct cairn_id *id)
{
	struct cairn_name name;
	int ret = cairn_name_resolve(t, spec, &name);

	if (!ret)
		*id = name.image;
	return ret;
}

/* --- naming: the writes --------------------------------------------------- */

int cairn_naming_begin(struct cairn_store *s, struct cairn_txn **t)
{
	/* a publishing transaction: fully synced */
	int ret = cairn_store_set_batch_mode(s, false);

	return ret ? ret : cairn_txn_begin(s, true, t);
}

int cairn_naming_commit(struct cairn_txn *t)
{
	/* gc's protocol (gc.h): a name moved, so a gc that marked before must mark again */
	int ret = cairn_epoch_bump(t, NULL);

	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	return cairn_txn_commit(t);
}

int cairn_naming_check(struct cairn_txn *t, const struct cairn_id *image)
{
	struct cairn_image img;
	int ret = cairn_image_get(t, image, &img);

	if (ret == -ENOENT) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(image, hex);
		return cairn_err(ret, "image %.12s is not in the store (gc collected it: no name "
				      "kept it)", hex);
	}
	return ret;
}

int cairn_tag_put(struct cairn_txn *t, const char *name, const struct cairn_id *image)
{
	return cairn_put(t, CAIRN_DBI_TAGS, name, strlen(name), image->b, CAIRN_ID_LEN, 0, NULL,
			 NULL);
}

/* Ends a naming transaction: committed when ret is 0, aborted otherwise. */
static int naming_end(struct cairn_txn *t, int ret)
{
	if (ret) {
		cairn_txn_abort(t);
		return ret;
	}
	return cairn_naming_commit(t);
}

int cairn_image_hold(struct cairn_store *s, const struct cairn_id *images, size_t n)
{
	struct cairn_txn *t = NULL;
	int ret = cairn_naming_begin(s, &t);

	if (ret == -EROFS) {
		/* a store nobody can write (a read-only filesystem): no gc runs there */
		cairn_err_clear();
		ret = cairn_txn_begin(s, false, &t);
		for (size_t i = 0; !ret && i < n; i++)
			ret = cairn_naming_check(t, &images[i]);
		cairn_txn_abort(t);
		return ret;
	}
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < n; i++)
		ret = cairn_naming_check(t, &images[i]);
	return naming_end(t, ret);
}

int cairn_tag_set(struct cairn_store *s, const char *name, const struct cairn_id *image)
{
	struct cairn_txn *t;
	int ret;

	if (cairn_tag_check(name))
		return cairn_err(-EINVAL, "'%s' is not a valid tag name", name);
	ret = cairn_naming_begin(s, &t);
	if (ret)
		return ret;
	ret = cairn_naming_check(t, image);
	if (!ret)
		ret = cairn_tag_put(t, name, image);
	return naming_end(t, ret);
}

int cairn_tag_remove(struct cairn_store *s, const char *name)
{
	struct cairn_txn *t;
	struct cairn_id id;
	int ret = cairn_naming_begin(s, &t);

	if (ret)
		return ret;
	ret = cairn_tag_get(t, name, &id);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "there is no tag '%s'", name);
	if (!ret)
		ret = cairn_del(t, CAIRN_DBI_TAGS, name, strlen(name));
	return naming_end(t, ret);
}

/* Deletes every tag naming id. */
static int untag_all(struct cairn_txn *t, const struct cairn_id *id)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret = cairn_cursor_open(t, CAIRN_DBI_TAGS, &c);

	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;) {
		if (vl == CAIRN_ID_LEN && memcmp(v, id->b, CAIRN_ID_LEN) == 0) {
			ret = cairn_cursor_del(c);
			if (ret)
				break;
			/* start over: tags are few, and this needs no cursor subtleties */
			ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl);
			continue;
		}
		ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl);
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

int cairn_image_remove(struct cairn_store *s, const struct cairn_id *image)
{
	struct cairn_txn *t;
	char who[CAIRN_TAG_MAX + 32];
	int ret = cairn_naming_begin(s, &t);

	if (ret)
		return ret;
	ret = cairn_naming_check(t, image);
	if (!ret) {
		ret = cairn_platform_uses(t, image, who, sizeof(who));
		if (ret > 0)
			ret = cairn_err(-EBUSY, "platform generation %s uses it (gc --keep prunes "
						"history)", who);
	}
	if (!ret)
		ret = untag_all(t, image);
	if (!ret)
		ret = cairn_del(t, CAIRN_DBI_IMAGES, image->b, CAIRN_ID_LEN);
	return naming_end(t, ret);
}

int cairn_image_record(struct cairn_txn *t, const struct cairn_id *id, const void **val,
		       size_t *len)
{
	return cairn_get(t, CAIRN_DBI_IMAGES, id->b, CAIRN_ID_LEN, val, len);
}

int cairn_layer_source(struct cairn_txn *t, const struct cairn_id *layer, uint8_t *source)
{
	struct cairn_layer_disk d;
	const void *v;
	size_t vl;
	int ret = cairn_get(t, CAIRN_DBI_LAYERS, layer->b, CAIRN_ID_LEN, &v, &vl);

	if (ret)
		return ret;
	if (vl != sizeof(d))
		return -EUCLEAN;
	memcpy(&d, v, sizeof(d));
	*source = d.source;
	return 0;
}
