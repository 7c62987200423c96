/* SPDX-License-Identifier: MIT */
/*
 * pull.c - resolving remote names and fetching images (transfer.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "chunk.h"
#include "gc.h"
#include "image.h"
#include "layout.h"
#include "lazy.h"
#include "read.h"
#include "source.h"
#include "transfer.h"
#include "walk.h"
#include "writer.h"

#define RANGE_GAP (64u << 10)     /* neighbours this close share one GET */
#define RANGE_MAX (8u << 20)      /* no GET asks for more */
#define IMAGE_OBJ_MAX (64u << 20)
#define PTR_MAX 4096

/* Pointers. */

static int get_pointer(struct cairn_xfer *x, const char *rest, struct cairn_rptr *p)
{
	struct cairn_buf b = { 0 };
	char key[CAIRN_RKEY_MAX];
	int ret = cairn_remote_key(x->c, rest, key, sizeof(key));

	if (!ret)
		ret = cairn_s3_get(x->c->s3, key, PTR_MAX, &b);
	if (!ret)
		ret = cairn_rptr_parse(b.data, b.len, p);
	cairn_buf_release(&b);
	return ret;
}

struct gens {
	uint64_t max;
	size_t plen;
};

static int on_gen(void *arg, const char *key, uint64_t size)
{
	struct gens *g = arg;
	const char *rest = key + g->plen;
	uint64_t v = 0;

	if (strlen(key) != g->plen + 20)
		return 0;
	for (int i = 0; i < 20; i++) {
		if (rest[i] < '0' || rest[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(rest[i] - '0');
	}
	if (v > g->max)
		g->max = v;
	return 0;
}

int cairn_remote_platform_head(struct cairn_xfer *x, const char *platform,
			       struct cairn_rptr *head)
{
	char rest[CAIRN_RKEY_MAX], prefix[CAIRN_RKEY_MAX];
	struct gens g = { 0 };
	int ret;

	memset(head, 0, sizeof(*head));
	if (cairn_rkey_platform(platform, rest))
		return cairn_err(-EINVAL, "'%s' is not a valid platform name", platform);
	ret = cairn_remote_key(x->c, rest, prefix, sizeof(prefix));
	if (ret)
		return ret;
	g.plen = strlen(prefix);
	ret = cairn_s3_list(x->c->s3, prefix, NULL, on_gen, &g);
	if (ret || !g.max)
		return ret;
	cairn_rkey_generation(platform, g.max, rest);
	ret = get_pointer(x, rest, head);
	if (ret)
		return ret;
	if (head->kind != CAIRN_RPTR_GENERATION || head->generation != g.max ||
	    strcmp(head->name, platform) != 0)
		return cairn_err(-EUCLEAN, "generation %" PRIu64 " of platform '%s' on the remote "
					   "names another platform or generation", g.max, platform);
	return 0;
}

/* A pointer from a remote trusted with a key must be signed by it. */
static int check_trust(struct cairn_xfer *x, const struct cairn_rptr *p)
{
	if (!x->c->rec.trust)
		return 0;
	return cairn_sign_check(x->c->rec.trust_key, p);
}

int cairn_remote_resolve(struct cairn_xfer *x, const char *name, struct cairn_rtarget *out)
{
	char rest[CAIRN_RKEY_MAX], plat[130];
	const char *at = strchr(name, '@');
	struct cairn_rptr p;
	int ret;

	memset(out, 0, sizeof(*out));
	if (at && (size_t)(at - name) < sizeof(plat)) { /* PLATFORM@GEN */
		char *end;
		unsigned long long gen = strtoull(at + 1, &end, 10);

		snprintf(plat, sizeof(plat), "%.*s", (int)(at - name), name);
		if (*end || gen == 0 || cairn_rkey_generation(plat, gen, rest))
			return cairn_err(-EINVAL, "'%s' is not PLATFORM@GENERATION", name);
		ret = get_pointer(x, rest, &p);
		if (ret == -ENOENT)
			return cairn_err(ret, "the remote has no generation %llu of platform '%s'",
					 gen, plat);
		if (!ret && (p.kind != CAIRN_RPTR_GENERATION || p.generation != gen ||
			     strcmp(p.name, plat) != 0))
			ret = cairn_err(-EUCLEAN, "'%s' on the remote names another platform or "
						  "generation", name);
		ret = ret ?: check_trust(x, &p);
		if (ret)
			return ret;
		out->image = p.image;
		out->is_platform = true;
		out->generation = gen;
		snprintf(out->name, sizeof(out->name), "%s", plat);
		return 0;
	}
	if (cairn_rkey_tag(name, rest) == 0) {
		ret = get_pointer(x, rest, &p);
		if (ret == 0) {
			if (p.kind != CAIRN_RPTR_TAG || strcmp(p.name, name) != 0)
				return cairn_err(-EUCLEAN, "tag '%s' on the remote names another tag",
						 name);
			ret = check_trust(x, &p);
			if (ret)
				return ret;
			out->image = p.image;
			out->is_tag = true;
			snprintf(out->name, sizeof(out->name), "%s", name);
			return 0;
		}
		if (ret != -ENOENT)
			return ret;
		cairn_err_clear();
		ret = cairn_remote_platform_head(x, name, &p);
		if (ret)
			return ret;
		if (p.generation) {
			ret = check_trust(x, &p);
			if (ret)
				return ret;
			out->image = p.image;
			out->is_platform = true;
			out->generation = p.generation;
			snprintf(out->name, sizeof(out->name), "%s", name);
			return 0;
		}
	}
	if (strlen(name) == CAIRN_ID_HEX_LEN &&
	    cairn_rkey_parse_id(name, "", &out->image) == 0)
		return 0;
	return cairn_err(-ENOENT, "the remote has no tag, platform or image '%s'", name);
}

/* Pulling. */

struct want {
	uint8_t kind;
	uint32_t raw_len; /* chunks: the length its file gives it */
	struct cairn_id id;
};

struct wants {
	struct want *v;
	size_t n, cap;
};

static int wants_add(struct wants *w, uint8_t kind, const struct cairn_id *id, uint32_t raw_len)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 1024;
		struct want *n = realloc(w->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->v = n;
		w->cap = cap;
	}
	w->v[w->n++] = (struct want){ .kind = kind, .raw_len = raw_len, .id = *id };
	return 0;
}

struct puller {
	struct cairn_xfer *x;
	struct cairn_rindex rx;
	struct cairn_writer *w;
	struct cairn_txn *t;       /* local look-ups (a snapshot from the start) */
	struct cairn_objmap seen;  /* (kind, id) already asked for */
	struct wants next;         /* nodes and contents for the next round */
	struct wants fetch;        /* what this round fetches */
	struct wants chunks;       /* chunks to fetch, at the end */
	struct cairn_zctx z;
	struct cairn_buf scratch;  /* a local pack entry being built */
	uint8_t *decoded;          /* CAIRN_CHUNK_MAX_LIMIT bytes */
	int err;
};

static uint8_t objkind(uint8_t rkind)
{
	return rkind == CAIRN_RKIND_NODE ? CAIRN_OBJ_NODE :
	       rkind == CAIRN_RKIND_CONTENT ? CAIRN_OBJ_CONTENT : CAIRN_OBJ_CHUNK;
}

static const char *kind_word(uint8_t rkind)
{
	return rkind == CAIRN_RKIND_NODE ? "node" : rkind == CAIRN_RKIND_CONTENT ? "content" : "chunk";
}

/* Asks for (kind, id) once: the next round (nodes, contents) or the chunk list. */
static int need(struct puller *p, uint8_t kind, const struct cairn_id *id, uint64_t raw_len)
{
	struct cairn_obj *o;
	bool added;
	int ret = cairn_objmap_add(&p->seen, objkind(kind), id, &o, &added);

	if (ret || !added)
		return ret;
	if (kind == CAIRN_RKIND_CHUNK) {
		struct cairn_chunk_info info;

		/* held here already: nothing to fetch */
		ret = cairn_chunks_stat(p->t, id, &info);
		if (ret == 0 && info.where == CAIRN_CHUNK_LOCAL)
			return 0;
		if (ret == 0 && info.where == CAIRN_CHUNK_REMOTE && info.raw_len != raw_len) {
			char hex[CAIRN_ID_HEX_LEN + 1];

			/*
			 * An id fixes its bytes, so honest lists agree on its length: one
			 * that does not would overwrite the lazy record every image
			 * sharing the chunk reads by (and make those reads fail).
			 */
			cairn_id_hex(id, hex);
			return cairn_err(-EIO, "chunk %s is %llu bytes by one content list and %llu "
					       "by another: the remote's image is damaged",
					 hex, (unsigned long long)raw_len,
					 (unsigned long long)info.raw_len);
		}
		if (ret == 0 || ret == -EUCLEAN)
			ret = -ENOENT; /* damaged index records are fsck's; fetch a good copy */
		if (ret != -ENOENT)
			return ret;
		cairn_err_clear();
		if (raw_len == 0 || raw_len > CAIRN_CHUNK_MAX_LIMIT) {
			char hex[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(id, hex);
			return cairn_err(-EIO, "chunk %s of the image has an impossible length", hex);
		}
		return wants_add(&p->chunks, kind, id, (uint32_t)raw_len);
	}
	return wants_add(&p->next, kind, id, 0);
}

/* What a content list names. */
static int content_names(struct puller *p, const void *val, size_t len,
			 const struct cairn_id *id)
{
	struct cairn_content_view cv;
	char hex[CAIRN_ID_HEX_LEN + 1];
	int ret = cairn_content_parse(val, len, CAIRN_PARSE_STRICT, &cv);

	if (ret) {
		cairn_id_hex(id, hex);
		return cairn_err(-EIO, "content %s does not parse", hex);
	}
	for (uint32_t i = 0; i < cv.count && !ret; i++) {
		struct cairn_extent e;

		cairn_content_extent(&cv, i, &e);
		if (!e.hole)
			ret = need(p, CAIRN_RKIND_CHUNK, &e.id, e.end - e.start);
	}
	return ret;
}

/* What a node names: its children, its content. */
static int node_names(struct puller *p, const void *val, size_t len, const struct cairn_id *id)
{
	struct cairn_node_view v;
	char hex[CAIRN_ID_HEX_LEN + 1];
	int ret = cairn_node_parse(val, len, CAIRN_PARSE_STRICT, &v);

	if (ret) {
		cairn_id_hex(id, hex);
		return cairn_err(-EIO, "node %s does not parse", hex);
	}
	if (v.type == CAIRN_NODE_DIR) {
		for (uint32_t i = 0; i < v.nentries && !ret; i++) {
			struct cairn_dirent d;

			ret = cairn_dir_entry(&v, i, &d);
			if (!ret)
				ret = need(p, CAIRN_RKIND_NODE, &d.id, 0);
		}
	} else if (v.type == CAIRN_NODE_REG) {
		if (v.content_kind == CAIRN_CONTENT_CHUNK)
			ret = need(p, CAIRN_RKIND_CHUNK, &v.content, v.size);
		else if (v.content_kind == CAIRN_CONTENT_LIST)
			ret = need(p, CAIRN_RKIND_CONTENT, &v.content, 0);
	}
	return ret;
}

/* One fetched entry, checked against what the index promised and its id, then stored. */
static int take_entry(struct puller *p, const struct want *wt, const uint8_t *e, size_t elen)
{
	struct cairn_rentry h;
	char hex[CAIRN_ID_HEX_LEN + 1];
	const uint8_t *payload = e + sizeof(h);
	uint32_t len, raw_len;
	struct cairn_id got;
	int ret;

	cairn_id_hex(&wt->id, hex);
	if (elen < sizeof(h))
		goto bad;
	memcpy(&h, e, sizeof(h));
	len = CAIRN_GET(h.len);
	raw_len = CAIRN_GET(h.raw_len);
	if (h.kind != wt->kind || memcmp(h.id, wt->id.b, CAIRN_ID_LEN) != 0 ||
	    len != elen - sizeof(h))
		goto bad;
	p->x->st.objects_received++;
	if (wt->kind == CAIRN_RKIND_NODE) {
		cairn_hash(payload, len, &got);
		if (!cairn_id_eq(&got, &wt->id))
			goto bad;
		ret = node_names(p, payload, len, &wt->id);
		return ret ? ret : cairn_writer_put_node_value(p->w, &wt->id, payload, len);
	}
	if (wt->kind == CAIRN_RKIND_CONTENT) {
		struct cairn_content_view cv;

		/* a list is named by its own hash: checked now, before its chunks */
		if (cairn_content_check(&wt->id, payload, len, &cv)) {
			cairn_err_clear();
			goto bad;
		}
		ret = content_names(p, payload, len, &wt->id);
		return ret ? ret : cairn_writer_put_content_value(p->w, &wt->id, payload, len);
	}
	/* a chunk: as a local pack entry, untrusted, decoded and hashed before it is kept */
	{
		struct cairn_pack_entry pe = { .version = CAIRN_FORMAT_VERSION, .codec = h.codec,
					       .flags = CAIRN_CHUNK_UNTRUSTED };
		long n;

		if ((h.codec != CAIRN_CODEC_RAW && h.codec != CAIRN_CODEC_ZSTD) || raw_len == 0 ||
		    raw_len > CAIRN_CHUNK_MAX_LIMIT || len > CAIRN_CHUNK_MAX_LIMIT + 65536)
			goto bad;
		CAIRN_SET(pe.raw_len, raw_len);
		CAIRN_SET(pe.len, len);
		memcpy(pe.id, h.id, CAIRN_ID_LEN);
		p->scratch.len = 0;
		ret = cairn_buf_append(&p->scratch, &pe, sizeof(pe));
		ret = ret ?: cairn_buf_append(&p->scratch, payload, len);
		if (ret)
			return ret;
		n = cairn_chunk_decode_entry(&p->z, &wt->id, true, p->scratch.data,
					     p->scratch.len, p->decoded, CAIRN_CHUNK_MAX_LIMIT);
		if (n < 0 || (uint32_t)n != raw_len) {
			cairn_err_clear();
			goto bad;
		}
		return cairn_writer_put_entry(p->w, &wt->id, p->scratch.data, p->scratch.len);
	}
bad:
	return cairn_err(-EIO, "%s %s from the remote does not match its id (damaged, truncated "
			       "or substituted): nothing was published", kind_word(wt->kind), hex);
}

/* One ranged GET: the wants [first, first + n) of a list sorted by place. */
struct range {
	struct puller *p;
	const struct want *wants;
	const struct cairn_robj **objs;
	size_t first, n;
	uint64_t off, len;
	char key[CAIRN_RKEY_MAX];
};

static void range_done(void *arg, const struct cairn_s3_result *r)
{
	struct range *rg = arg;
	struct puller *p = rg->p;

	if (p->err)
		return;
	if (r->err) {
		p->err = cairn_err(r->err, "GET %s: %s", rg->key, r->msg);
		return;
	}
	if (r->len != rg->len) {
		p->err = cairn_err(-EIO, "GET %s: %zu bytes where %" PRIu64 " were asked for "
					 "(a truncated pack)", rg->key, r->len, rg->len);
		return;
	}
	for (size_t i = rg->first; i < rg->first + rg->n && !p->err; i++) {
		const struct cairn_robj *o = rg->objs[i];

		p->err = take_entry(p, &rg->wants[i], r->body + (o->offset - rg->off), o->len);
	}
	cairn_xfer_progress(p->x, false);
}

struct placed {
	struct want w;
	const struct cairn_robj *o;
};

static int placed_cmp(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;

	if (x->o->pack != y->o->pack)
		return x->o->pack < y->o->pack ? -1 : 1;
	return x->o->offset < y->o->offset ? -1 : x->o->offset > y->o->offset;
}

/* Fetches every want of list (the remote must index each one), neighbours together. */
static int fetch_all(struct puller *p, struct wants *list)
{
	struct placed *pl = calloc(list->n ? list->n : 1, sizeof(*pl));
	struct want *ws = calloc(list->n ? list->n : 1, sizeof(*ws));
	const struct cairn_robj **os = calloc(list->n ? list->n : 1, sizeof(*os));
	struct range *ranges = calloc(list->n ? list->n : 1, sizeof(*ranges));
	size_t nr = 0;
	int ret = 0;

	if (!pl || !ws || !os || !ranges) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < list->n; i++) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		pl[i].w = list->v[i];
		pl[i].o = cairn_rindex_find(&p->rx, list->v[i].kind, &list->v[i].id);
		if (!pl[i].o) {
			cairn_id_hex(&list->v[i].id, hex);
			ret = cairn_err(-EIO, "the remote lacks %s %s of the image (its packs do not "
					      "hold it)", kind_word(list->v[i].kind), hex);
			goto out;
		}
	}
	qsort(pl, list->n, sizeof(*pl), placed_cmp);
	for (size_t i = 0; i < list->n; i++) {
		ws[i] = pl[i].w;
		os[i] = pl[i].o;
	}
	for (size_t i = 0; i < list->n;) {
		struct range *rg = &ranges[nr++];
		size_t j = i + 1;
		uint64_t end = os[i]->offset + os[i]->len;
		char rest[CAIRN_RKEY_MAX];

		while (j < list->n && os[j]->pack == os[i]->pack && os[j]->offset >= end &&
		       os[j]->offset - end <= RANGE_GAP &&
		       os[j]->offset + os[j]->len - os[i]->offset <= RANGE_MAX) {
			end = os[j]->offset + os[j]->len;
			j++;
		}
		*rg = (struct range){ .p = p, .wants = ws, .objs = os, .first = i, .n = j - i,
				      .off = os[i]->offset, .len = end - os[i]->offset };
		cairn_rkey_pack(&p->rx.packs[os[i]->pack], false, rest);
		ret = cairn_remote_key(p->x->c, rest, rg->key, sizeof(rg->key));
		if (ret)
			goto out;
		p->x->st.bytes_total += rg->len;
		{
			struct cairn_s3_request r = {
				.method = CAIRN_S3_GET, .key = rg->key, .range_off = rg->off,
				.range_len = rg->len, .done = range_done, .arg = rg,
			};

			ret = cairn_s3_submit(p->x->c->s3, &r);
			if (ret)
				goto out;
		}
		i = j;
	}
	p->x->st.objects_total += list->n;
	while (cairn_s3_pending(p->x->c->s3)) {
		ret = cairn_s3_run(p->x->c->s3, p->err ? -1 : 200);
		if (ret)
			break;
		cairn_xfer_progress(p->x, false);
	}
out:
	if (ret && cairn_s3_pending(p->x->c->s3)) {
		int saved = ret;
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		p->err = p->err ? p->err : ret; /* callbacks stop taking */
		while (cairn_s3_pending(p->x->c->s3) && cairn_s3_run(p->x->c->s3, -1) == 0)
			;
		ret = cairn_err(saved, "%s", msg);
	}
	free(pl);
	free(ws);
	free(os);
	free(ranges);
	return ret ? ret : p->err;
}

/* One round: what the store has is read here, the rest fetched. */
static int round_once(struct puller *p, struct wants *cur)
{
	int ret = 0;

	p->fetch.n = 0;
	for (size_t i = 0; i < cur->n && !ret; i++) {
		const struct want *wt = &cur->v[i];
		const void *v;
		size_t vl;

		ret = wt->kind == CAIRN_RKIND_NODE ? cairn_node_value(p->t, &wt->id, &v, &vl) :
						     cairn_content_value(p->t, &wt->id, &v, &vl);
		if (ret == 0) {
			ret = wt->kind == CAIRN_RKIND_NODE ? node_names(p, v, vl, &wt->id) :
							    content_names(p, v, vl, &wt->id);
			if (ret)
				ret = cairn_err(ret, "%s (in the local store: run 'cairn fsck')",
						cairn_errmsg());
		} else if (ret == -ENOENT) {
			ret = wants_add(&p->fetch, wt->kind, &wt->id, 0);
		}
	}
	return ret ? ret : fetch_all(p, &p->fetch);
}

/*
 * pull --lazy: where each chunk the store lacks is on the remote, recorded
 * instead of fetched (store/lazy.h). The remote's index says where; that is
 * untrusted like the rest, and a lazy read checks what it finds there
 * against the chunk id.
 */
static int record_lazy(struct puller *p)
{
	int ret = 0;

	for (size_t i = 0; i < p->chunks.n && !ret; i++) {
		const struct want *wt = &p->chunks.v[i];
		const struct cairn_robj *o = cairn_rindex_find(&p->rx, CAIRN_RKIND_CHUNK, &wt->id);
		struct cairn_lazy l = { .id = wt->id, .raw_len = wt->raw_len };
		char hex[CAIRN_ID_HEX_LEN + 1];

		if (!o || o->len <= sizeof(struct cairn_rentry)) {
			cairn_id_hex(&wt->id, hex);
			return cairn_err(-EIO, "the remote lacks chunk %s of the image (its packs do "
					       "not hold it)", hex);
		}
		l.len = o->len;
		l.offset = o->offset;
		l.pack = p->rx.packs[o->pack];
		snprintf(l.remote, sizeof(l.remote), "%s", p->x->c->rec.name);
		ret = cairn_writer_put_lazy(p->w, &l);
		p->x->st.lazy_chunks++;
		p->x->st.lazy_bytes += o->len;
	}
	return ret;
}

/* The image object: its record checked against the image id, its packs. */
static int read_image_object(struct puller *p, const struct cairn_id *image,
			     struct cairn_buf *obj, const uint8_t **rec, size_t *reclen,
			     const uint8_t **sources, struct cairn_image *img)
{
	struct cairn_rimage_header h;
	char rest[CAIRN_RKEY_MAX], key[CAIRN_RKEY_MAX], hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id want;
	uint64_t rl, nl, np;
	int ret;

	cairn_id_hex(image, hex);
	cairn_rkey_image(image, rest);
	ret = cairn_remote_key(p->x->c, rest, key, sizeof(key));
	ret = ret ?: cairn_s3_get(p->x->c->s3, key, IMAGE_OBJ_MAX, obj);
	if (ret == -ENOENT)
		return cairn_err(ret, "the remote has no image %s", hex);
	if (ret)
		return ret;
	if (obj->len < sizeof(h))
		goto bad;
	memcpy(&h, obj->data, sizeof(h));
	rl = CAIRN_GET(h.record_len);
	nl = CAIRN_GET(h.nlayers);
	np = CAIRN_GET(h.npacks);
	if (memcmp(h.magic, CAIRN_RIMAGE_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != CAIRN_RFORMAT_VERSION || obj->len != sizeof(h) + rl + nl + np * CAIRN_ID_LEN)
		goto bad;
	*rec = obj->data + sizeof(h);
	*reclen = rl;
	*sources = *rec + rl;
	if (cairn_image_parse(*rec, rl, img) || img->nlayers != nl)
		goto bad;
	cairn_image_id((const struct cairn_id *)img->layers, img->nlayers, &img->root, &want);
	if (!cairn_id_eq(&want, image))
		goto bad;
	return cairn_rindex_fetch(&p->rx, p->x->c,
				  (const struct cairn_id *)(*sources + nl), (size_t)np);
bad:
	return cairn_err(-EIO, "image %s from the remote does not match its id (damaged, "
			       "truncated or substituted)", hex);
}

/*
 * Is the image in the store with everything it reaches (*complete), or with
 * all its metadata and its other chunks known from lazy records (*meta)?
 */
static int local_complete(struct cairn_store *s, const struct cairn_id *image, bool *complete,
			  bool *meta)
{
	struct cairn_usage *u = NULL;
	struct cairn_usage total;
	struct cairn_txn *t;
	size_t n = 0;
	int ret = cairn_txn_begin(s, false, &t);

	*complete = *meta = false;
	if (ret)
		return ret;
	{
		struct cairn_image img;

		ret = cairn_image_get(t, image, &img);
		if (ret == -ENOENT) {
			cairn_txn_abort(t);
			return 0;
		}
	}
	if (!ret)
		ret = cairn_usage_images(t, image, &u, &n, &total);
	for (size_t i = 0; !ret && i < n; i++) {
		if (cairn_id_eq(&u[i].image, image)) {
			*meta = u[i].missing == 0;
			*complete = *meta && u[i].remote == 0;
		}
	}
	free(u);
	cairn_txn_abort(t);
	return ret;
}

int cairn_pull_image(struct cairn_xfer *x, const struct cairn_id *image, const char *tag)
{
	struct puller p = { .x = x };
	struct cairn_buf obj = { 0 };
	const uint8_t *rec = NULL, *sources = NULL;
	struct cairn_image img;
	size_t reclen = 0;
	bool complete, meta;
	int lock = -1, ret;

	if (x->lazy && !x->c->rec.cred_file[0])
		return cairn_err(-EINVAL, "a lazy pull needs remote '%s' to read its credentials from "
					  "a file ('cairn remote add ... --credentials FILE'): the "
					  "daemon that fetches for mounts never reads the environment",
				 x->c->rec.name);
	ret = local_complete(x->s, image, &complete, &meta);
	if (ret)
		return ret;
	if (x->lazy)
		complete = meta;
	lock = cairn_gc_lock(x->s, false); /* gc must not take what is not yet published */
	if (lock < 0)
		return lock;
	cairn_rindex_init(&p.rx);
	cairn_objmap_init(&p.seen);
	ret = cairn_writer_new(x->s, CAIRN_WRITER_UNTRUSTED, &p.w);
	if (ret)
		goto out;
	if (complete) { /* nothing to fetch: name it */
		struct cairn_txn *t;
		const void *v;
		size_t vl;

		ret = cairn_txn_begin(x->s, false, &t);
		if (ret)
			goto out;
		ret = cairn_image_record(t, image, &v, &vl);
		if (!ret)
			ret = cairn_buf_append(&obj, v, vl);
		cairn_txn_abort(t);
		if (!ret && tag)
			ret = cairn_writer_publish_record(p.w, image, obj.data, obj.len, NULL, tag);
		goto out;
	}
	p.decoded = malloc(CAIRN_CHUNK_MAX_LIMIT);
	if (!p.decoded) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_image_object(&p, image, &obj, &rec, &reclen, &sources, &img);
	if (!ret)
		ret = cairn_txn_begin(x->s, false, &p.t);
	if (ret)
		goto out;
	/* the roots: the flattened tree and each layer's */
	ret = need(&p, CAIRN_RKIND_NODE, &img.root, 0);
	for (uint32_t i = 0; !ret && i < img.nlayers; i++)
		ret = need(&p, CAIRN_RKIND_NODE,
			   (const struct cairn_id *)(img.layers + (size_t)i * CAIRN_ID_LEN), 0);
	/* level by level: each round fetches what the one before named */
	while (!ret && p.next.n) {
		struct wants cur = p.next;

		p.next = (struct wants){ 0 };
		ret = round_once(&p, &cur);
		free(cur.v);
	}
	if (!ret)
		ret = x->lazy ? record_lazy(&p) : fetch_all(&p, &p.chunks);
	if (!ret)
		ret = cairn_writer_publish_record(p.w, image, rec, reclen, sources, tag);
	cairn_xfer_progress(x, true);
out:
	if (p.t)
		cairn_txn_abort(p.t);
	cairn_writer_free(p.w);
	cairn_rindex_release(&p.rx);
	cairn_objmap_release(&p.seen);
	free(p.next.v);
	free(p.fetch.v);
	free(p.chunks.v);
	free(p.decoded);
	cairn_buf_release(&p.scratch);
	cairn_zctx_release(&p.z);
	cairn_buf_release(&obj);
	if (lock >= 0)
		close(lock);
	x->st.bytes_received = cairn_s3_stats(x->c->s3)->bytes_received;
	return ret;
}
