/* SPDX-License-Identifier: MIT */
/*
 * rindex.c - the remote's pack indexes, merged (rindex.h).
 */
#include "rindex.h"

#include <stdio.h>

#include "layout.h"

#define IDX_MAX (256u << 20) /* no index is larger (8 million objects) */

void cairn_rindex_init(struct cairn_rindex *x)
{
	memset(x, 0, sizeof(*x));
}

void cairn_rindex_release(struct cairn_rindex *x)
{
	free(x->slots);
	free(x->packs);
	free(x->pack_sizes);
	memset(x, 0, sizeof(*x));
}

static size_t slot_of(const struct cairn_rindex *x, uint8_t kind, const struct cairn_id *id)
{
	uint64_t h;
	size_t mask = x->cap - 1;

	memcpy(&h, id->b + 8, sizeof(h));
	h ^= kind * 0x9E3779B97F4A7C15ull;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct cairn_robj *o = &x->slots[i];

		if (!o->kind || (o->kind == kind && cairn_id_eq(&o->id, id)))
			return i;
	}
}

static int grow(struct cairn_rindex *x)
{
	size_t old_cap = x->cap, cap = old_cap ? old_cap * 2 : 4096;
	struct cairn_robj *old = x->slots;

	x->slots = calloc(cap, sizeof(*x->slots));
	if (!x->slots) {
		x->slots = old;
		return -ENOMEM;
	}
	x->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].kind)
			x->slots[slot_of(x, old[i].kind, &old[i].id)] = old[i];
	free(old);
	return 0;
}

const struct cairn_robj *cairn_rindex_find(const struct cairn_rindex *x, uint8_t kind,
					   const struct cairn_id *id)
{
	const struct cairn_robj *o;

	if (!x->cap)
		return NULL;
	o = &x->slots[slot_of(x, kind, id)];
	return o->kind ? o : NULL;
}

int cairn_rindex_pack(const struct cairn_rindex *x, const struct cairn_id *pack)
{
	for (size_t i = 0; i < x->npacks; i++)
		if (cairn_id_eq(&x->packs[i], pack))
			return (int)i;
	return -ENOENT;
}

int cairn_rindex_add(struct cairn_rindex *x, const struct cairn_id *pack, const void *idx,
		     size_t len)
{
	struct cairn_ridx_header h;
	const uint8_t *p = idx;
	char hex[CAIRN_ID_HEX_LEN + 1];
	uint64_t count, size;
	int n = cairn_rindex_pack(x, pack);

	if (n >= 0)
		return n;
	cairn_id_hex(pack, hex);
	if (len < sizeof(h))
		goto bad;
	memcpy(&h, idx, sizeof(h));
	count = CAIRN_GET(h.count);
	size = CAIRN_GET(h.pack_size);
	if (memcmp(h.magic, CAIRN_RIDX_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != CAIRN_RFORMAT_VERSION || memcmp(h.pack, pack->b, CAIRN_ID_LEN) != 0 ||
	    len != sizeof(h) + count * sizeof(struct cairn_ridx_rec) || size > CAIRN_RPACK_MAX)
		goto bad;
	if (x->npacks == x->cappacks) {
		size_t cap = x->cappacks ? 2 * x->cappacks : 16;
		struct cairn_id *np = realloc(x->packs, cap * sizeof(*np));
		uint64_t *ns;

		if (!np)
			return -ENOMEM;
		x->packs = np;
		ns = realloc(x->pack_sizes, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		x->pack_sizes = ns;
		x->cappacks = cap;
	}
	n = (int)x->npacks;
	for (uint64_t i = 0; i < count; i++) {
		struct cairn_ridx_rec r;
		struct cairn_robj *o;
		struct cairn_id id;
		uint64_t off;
		uint32_t elen;

		memcpy(&r, p + sizeof(h) + i * sizeof(r), sizeof(r));
		off = CAIRN_GET(r.offset);
		elen = CAIRN_GET(r.len);
		if (r.kind < CAIRN_RKIND_CHUNK || r.kind > CAIRN_RKIND_CONTENT ||
		    elen < sizeof(struct cairn_rentry) || off < sizeof(struct cairn_rpack_header) ||
		    off > size || elen > size - off)
			goto bad;
		if ((x->count + 1) * 4 > x->cap * 3 && grow(x))
			return -ENOMEM;
		memcpy(id.b, r.id, CAIRN_ID_LEN);
		o = &x->slots[slot_of(x, r.kind, &id)];
		if (o->kind)
			continue; /* known from another pack: keep the first */
		o->kind = r.kind;
		o->id = id;
		o->pack = (uint32_t)n;
		o->len = elen;
		o->offset = off;
		x->count++;
	}
	x->packs[n] = *pack;
	x->pack_sizes[n] = size;
	x->npacks++;
	return n;
bad:
	return cairn_err(-EUCLEAN, "the remote's index of pack %s is damaged", hex);
}

struct fetch {
	struct cairn_rindex *x;
	struct cairn_id pack;
	int *err;
};

static void fetched(void *arg, const struct cairn_s3_result *r)
{
	struct fetch *f = arg;
	int ret;

	if (*f->err)
		return;
	if (r->err) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(&f->pack, hex);
		*f->err = cairn_err(r->err, "index of pack %s: %s", hex, r->msg);
		return;
	}
	ret = cairn_rindex_add(f->x, &f->pack, r->body, r->len);
	if (ret < 0)
		*f->err = ret;
}

int cairn_rindex_fetch(struct cairn_rindex *x, struct cairn_remote_conn *c,
		       const struct cairn_id *packs, size_t n)
{
	struct fetch *fs = calloc(n ? n : 1, sizeof(*fs));
	char rest[CAIRN_RKEY_MAX], key[CAIRN_RKEY_MAX];
	int err = 0, ret = 0;

	if (!fs)
		return -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		struct cairn_s3_request r = { .method = CAIRN_S3_GET, .max_len = IDX_MAX,
					      .done = fetched, .arg = &fs[i] };

		if (cairn_rindex_pack(x, &packs[i]) >= 0)
			continue;
		fs[i] = (struct fetch){ .x = x, .pack = packs[i], .err = &err };
		cairn_rkey_pack(&packs[i], true, rest);
		ret = cairn_remote_key(c, rest, key, sizeof(key));
		r.key = key;
		if (!ret)
			ret = cairn_s3_submit(c->s3, &r);
	}
	if (!ret)
		ret = cairn_s3_run(c->s3, -1);
	free(fs);
	return ret ? ret : err;
}

struct listed {
	struct cairn_id *ids;
	size_t n, cap;
	size_t plen; /* the prefix "PREFIX/packs/" to strip */
};

static int on_listed(void *arg, const char *key, uint64_t size)
{
	struct listed *l = arg;
	struct cairn_id id;

	if (strlen(key) < l->plen || cairn_rkey_parse_id(key + l->plen, ".idx", &id))
		return 0; /* packs, and names that are not ours */
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct cairn_id *p = realloc(l->ids, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->ids = p;
		l->cap = cap;
	}
	l->ids[l->n++] = id;
	return 0;
}

int cairn_rindex_fetch_all(struct cairn_rindex *x, struct cairn_remote_conn *c)
{
	char prefix[CAIRN_RKEY_MAX];
	struct listed l = { 0 };
	int ret;

	ret = cairn_remote_key(c, "packs/", prefix, sizeof(prefix));
	if (ret)
		return ret;
	l.plen = strlen(prefix);
	ret = cairn_s3_list(c->s3, prefix, NULL, on_listed, &l);
	if (!ret)
		ret = cairn_rindex_fetch(x, c, l.ids, l.n);
	free(l.ids);
	return ret;
}
