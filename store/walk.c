/* SPDX-License-Identifier: MIT */
/*
 * walk.c - the object map and the walker over trees (see walk.h).
 *
 * The walker keeps an explicit stack of directories still to expand, so a
 * deep (or hostile) tree cannot overflow the C stack. A regular file's
 * content and chunks are followed as soon as the file node is reached.
 */
#include "walk.h"

#include "lazy.h"

#include "chunk.h"
#include "image.h"
#include "store-internal.h"

/* --- the map ------------------------------------------------------------ */

void cairn_objmap_init(struct cairn_objmap *m)
{
	memset(m, 0, sizeof(*m));
}

void cairn_objmap_release(struct cairn_objmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Ids are hashes already: their first bytes are as good as any hash of them. */
static size_t slot_of(const struct cairn_objmap *m, uint8_t kind, const struct cairn_id *id)
{
	uint64_t h = cairn_le64(id->b) ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ull);

	return (size_t)(h ^ (h >> 29)) & (m->cap - 1);
}

static struct cairn_obj *probe(const struct cairn_objmap *m, uint8_t kind,
			       const struct cairn_id *id)
{
	size_t i = slot_of(m, kind, id);

	for (;;) {
		struct cairn_obj *o = &m->slots[i];

		if (o->kind == 0 || (o->kind == kind && cairn_id_eq(&o->id, id)))
			return o;
		i = (i + 1) & (m->cap - 1);
	}
}

static int grow(struct cairn_objmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	struct cairn_objmap n = { .cap = ncap, .count = m->count };

	if (ncap < m->cap || ncap > SIZE_MAX / sizeof(*n.slots))
		return -ENOMEM;
	n.slots = calloc(ncap, sizeof(*n.slots));
	if (!n.slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].kind)
			*probe(&n, m->slots[i].kind, &m->slots[i].id) = m->slots[i];
	free(m->slots);
	*m = n;
	return 0;
}

int cairn_objmap_add(struct cairn_objmap *m, uint8_t kind, const struct cairn_id *id,
		     struct cairn_obj **out, bool *added)
{
	struct cairn_obj *o;
	int ret;

	/* load factor at most 1/2: probes stay short */
	if ((m->count + 1) * 2 > m->cap && (ret = grow(m)))
		return ret;
	o = probe(m, kind, id);
	*added = o->kind == 0;
	if (*added) {
		memset(o, 0, sizeof(*o));
		o->kind = kind;
		o->id = *id;
		m->count++;
	}
	*out = o;
	return 0;
}

struct cairn_obj *cairn_objmap_find(const struct cairn_objmap *m, uint8_t kind,
				    const struct cairn_id *id)
{
	struct cairn_obj *o;

	if (!m->cap)
		return NULL;
	o = probe(m, kind, id);
	return o->kind ? o : NULL;
}

struct cairn_obj *cairn_objmap_next(const struct cairn_objmap *m, size_t *pos)
{
	while (*pos < m->cap) {
		struct cairn_obj *o = &m->slots[(*pos)++];

		if (o->kind)
			return o;
	}
	return NULL;
}

/* --- the walker --------------------------------------------------------- */

struct dir_frame {
	struct cairn_id id;
	struct cairn_node_view v;
};

struct walker {
	struct cairn_txn *t;
	struct cairn_objmap *m;
	uint32_t mark;
	unsigned pflags; /* cairn_node_parse / cairn_content_parse flags */
	cairn_walk_fn fn;
	void *ctx;
	struct dir_frame *stack;
	size_t depth, cap;
};

static int push_dir(struct walker *w, const struct cairn_id *id, const struct cairn_node_view *v)
{
	if (w->depth == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 64;
		struct dir_frame *n = realloc(w->stack, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		w->stack = n;
		w->cap = ncap;
	}
	w->stack[w->depth].id = *id;
	w->stack[w->depth].v = *v;
	w->depth++;
	return 0;
}

/* A directory whose entries cannot all be read is damaged (non-strict parses). */
static bool dir_entries_ok(const struct cairn_node_view *v)
{
	struct cairn_dirent e;

	for (uint32_t i = 0; i < v->nentries; i++)
		if (cairn_dir_entry(v, i, &e))
			return false;
	return true;
}

static const enum cairn_db kind_db[] = {
	[CAIRN_OBJ_NODE] = CAIRN_DBI_NODES,
	[CAIRN_OBJ_CONTENT] = CAIRN_DBI_CONTENTS,
	[CAIRN_OBJ_CHUNK] = CAIRN_DBI_CHUNKS,
};

/* Reads and parses an object for its first visit of this walk; sets o's state. */
static int load(struct walker *w, struct cairn_obj *o, struct cairn_visit *v,
		struct cairn_node_view *nv, struct cairn_content_view *cv)
{
	struct cairn_chunk_ref ref;
	const void *val;
	size_t vlen;
	int ret;

	ret = cairn_get(w->t, kind_db[o->kind], o->id.b, CAIRN_ID_LEN, &val, &vlen);
	if (ret == -ENOENT && o->kind == CAIRN_OBJ_CHUNK) {
		struct cairn_lazy l;

		/* not local: a lazy pull's, to be fetched, or missing */
		ret = cairn_lazy_get(w->t, &o->id, &l);
		cairn_err_clear();
		o->state = ret == 0 ? CAIRN_OBJ_REMOTE : ret == -ENOENT ? CAIRN_OBJ_MISSING
								      : CAIRN_OBJ_DAMAGED;
		if (ret == 0) {
			o->len = l.raw_len;
			o->vlen = l.len;
		}
		return ret == -ENOENT || ret == -EUCLEAN || ret == 0 ? 0 : ret;
	}
	if (ret == -ENOENT) {
		cairn_err_clear();
		o->state = CAIRN_OBJ_MISSING;
		return 0;
	}
	if (ret)
		return ret;
	o->vlen = vlen;
	o->state = CAIRN_OBJ_DAMAGED;
	switch (o->kind) {
	case CAIRN_OBJ_NODE:
		if (cairn_node_parse(val, vlen, w->pflags, nv))
			return 0;
		if (nv->type == CAIRN_NODE_DIR && !dir_entries_ok(nv))
			return 0;
		o->type = nv->type;
		v->node = nv;
		break;
	case CAIRN_OBJ_CONTENT:
		if (cairn_content_parse(val, vlen, w->pflags, cv))
			return 0;
		o->len = cv->size;
		v->content = cv;
		break;
	default:
		if (cairn_chunk_parse(val, vlen, &ref))
			return 0;
		o->len = ref.raw_len;
		/* the bytes are in a pack: the index record and the pack entry */
		o->vlen = vlen + sizeof(struct cairn_pack_entry) + ref.len;
		break;
	}
	o->state = CAIRN_OBJ_OK;
	v->val = val;
	v->vlen = vlen;
	return 0;
}

static int reach(struct walker *w, uint8_t kind, const struct cairn_id *id, struct cairn_visit *v);

static int follow_content(struct walker *w, const struct cairn_id *file,
			  const struct cairn_node_view *nv)
{
	struct cairn_visit v = {
		.ref = CAIRN_REF_CONTENT,
		.from = file,
		.want_len = nv->size,
	};

	switch (nv->content_kind) {
	case CAIRN_CONTENT_CHUNK:
		return reach(w, CAIRN_OBJ_CHUNK, &nv->content, &v);
	case CAIRN_CONTENT_LIST:
		return reach(w, CAIRN_OBJ_CONTENT, &nv->content, &v);
	default:
		return 0;
	}
}

static int follow_extents(struct walker *w, const struct cairn_id *content,
			  const struct cairn_content_view *cv)
{
	for (uint32_t i = 0; i < cv->count; i++) {
		struct cairn_extent e;
		struct cairn_visit v = { .ref = CAIRN_REF_EXTENT, .from = content, .index = i };
		int ret;

		cairn_content_extent(cv, i, &e);
		if (e.hole)
			continue;
		v.want_len = e.end - e.start;
		ret = reach(w, CAIRN_OBJ_CHUNK, &e.id, &v);
		if (ret)
			return ret;
	}
	return 0;
}

/* One reference: v holds the reference fields; the rest is filled here. */
static int reach(struct walker *w, uint8_t kind, const struct cairn_id *id, struct cairn_visit *v)
{
	struct cairn_node_view nv;
	struct cairn_content_view cv;
	struct cairn_id oid = *id; /* id may point into a frame or map slot that moves */
	struct cairn_obj *o;
	bool added;
	uint8_t state;
	int ret;

	ret = cairn_objmap_add(w->m, kind, &oid, &o, &added);
	if (ret)
		return ret;
	v->obj = o;
	if (o->mark == w->mark) {
		v->first = false;
		ret = w->fn ? w->fn(w->ctx, v) : 0;
		return ret < 0 ? ret : 0;
	}
	v->first = true;
	o->mark = w->mark;
	o->walks++;
	if (added)
		o->owner = w->mark;
	ret = load(w, o, v, &nv, &cv);
	if (ret)
		return ret;
	state = o->state;
	ret = w->fn ? w->fn(w->ctx, v) : 0;
	if (ret)
		return ret < 0 ? ret : 0;
	/* o may move from here on: nested reaches add to the map */
	if (state != CAIRN_OBJ_OK)
		return 0;
	if (kind == CAIRN_OBJ_NODE && nv.type == CAIRN_NODE_DIR)
		return push_dir(w, &oid, &nv);
	if (kind == CAIRN_OBJ_NODE && nv.type == CAIRN_NODE_REG)
		return follow_content(w, &oid, &nv);
	if (kind == CAIRN_OBJ_CONTENT)
		return follow_extents(w, &oid, &cv);
	return 0;
}

static int expand_dir(struct walker *w, const struct dir_frame *f)
{
	for (uint32_t i = 0; i < f->v.nentries; i++) {
		struct cairn_visit v = { .ref = CAIRN_REF_DIRENT, .from = &f->id };
		struct cairn_dirent e;
		int ret;

		cairn_dir_entry(&f->v, i, &e); /* checked in load() */
		v.name = e.name;
		v.name_len = e.name_len;
		v.want_type = e.type;
		ret = reach(w, CAIRN_OBJ_NODE, &e.id, &v);
		if (ret)
			return ret;
	}
	return 0;
}

static int walk_root(struct walker *w, const struct cairn_id *root, uint8_t want_type)
{
	struct cairn_visit v = { .ref = CAIRN_REF_ROOT, .want_type = want_type };
	int ret = reach(w, CAIRN_OBJ_NODE, root, &v);

	while (!ret && w->depth) {
		struct dir_frame f = w->stack[--w->depth];

		ret = expand_dir(w, &f);
	}
	w->depth = 0;
	return ret;
}

static void walker_init(struct walker *w, struct cairn_txn *t, struct cairn_objmap *m,
			uint32_t mark, unsigned flags, cairn_walk_fn fn, void *ctx)
{
	memset(w, 0, sizeof(*w));
	w->t = t;
	w->m = m;
	w->mark = mark;
	w->pflags = flags & CAIRN_WALK_STRICT ? CAIRN_PARSE_STRICT : 0;
	w->fn = fn;
	w->ctx = ctx;
}

int cairn_walk(struct cairn_txn *t, struct cairn_objmap *m, uint32_t mark, unsigned flags,
	       const struct cairn_id *root, uint8_t want_type, cairn_walk_fn fn, void *ctx)
{
	struct walker w;
	int ret;

	if (mark == 0)
		return -EINVAL;
	walker_init(&w, t, m, mark, flags, fn, ctx);
	ret = walk_root(&w, root, want_type);
	free(w.stack);
	return ret;
}

int cairn_walk_image(struct cairn_txn *t, struct cairn_objmap *m, uint32_t mark, unsigned flags,
		     const struct cairn_id *image_root, const uint8_t *layers, uint32_t nlayers,
		     cairn_walk_fn fn, void *ctx)
{
	struct walker w;
	int ret;

	if (mark == 0)
		return -EINVAL;
	walker_init(&w, t, m, mark, flags, fn, ctx);
	ret = walk_root(&w, image_root, CAIRN_NODE_DIR);
	for (uint32_t i = 0; !ret && i < nlayers; i++) {
		struct cairn_id layer;

		memcpy(layer.b, layers + (size_t)i * CAIRN_ID_LEN, CAIRN_ID_LEN);
		ret = walk_root(&w, &layer, CAIRN_NODE_DIR);
	}
	free(w.stack);
	return ret;
}

/* --- space figures ------------------------------------------------------ */

struct usage_walk {
	struct cairn_usage *u;
};

static int usage_visit(void *ctx, const struct cairn_visit *v)
{
	struct cairn_usage *u = ((struct usage_walk *)ctx)->u;

	if (!v->first)
		return 0;
	if (v->obj->state == CAIRN_OBJ_REMOTE) {
		u->remote++;
		u->remote_bytes += v->obj->vlen;
		return 0;
	}
	if (v->obj->state != CAIRN_OBJ_OK) {
		u->missing++;
		return 0;
	}
	u->stored_bytes += v->obj->vlen;
	if (v->obj->kind == CAIRN_OBJ_CHUNK) {
		u->chunks++;
		u->chunk_bytes += v->obj->vlen;
	} else if (v->obj->kind == CAIRN_OBJ_CONTENT)
		u->contents++;
	else
		u->nodes++;
	return 0;
}

struct image_ref {
	struct cairn_id id;
	struct cairn_image img;
};

static int list_images(struct cairn_txn *t, struct image_ref **out, size_t *n)
{
	struct cairn_cursor *c;
	struct image_ref *list = NULL;
	size_t count = 0, cap = 0;
	const void *k, *val;
	size_t kl, vl;
	int ret;

	ret = cairn_cursor_open(t, CAIRN_DBI_IMAGES, &c);
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &val, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &val, &vl)) {
		struct image_ref *r;

		if (kl != CAIRN_ID_LEN)
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct image_ref *nl = realloc(list, ncap * sizeof(*nl));

			if (!nl) {
				ret = -ENOMEM;
				break;
			}
			list = nl;
			cap = ncap;
		}
		r = &list[count];
		memcpy(r->id.b, k, CAIRN_ID_LEN);
		if (cairn_image_parse(val, vl, &r->img)) {
			char hex[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&r->id, hex);
			ret = cairn_err(-EUCLEAN, "image record %s is damaged", hex);
			break;
		}
		r->img.id = r->id;
		count++;
	}
	cairn_cursor_close(c);
	if (ret != -ENOENT) {
		free(list);
		return ret;
	}
	cairn_err_clear();
	*out = list;
	*n = count;
	return 0;
}

int cairn_usage_images(struct cairn_txn *t, const struct cairn_id *only,
		       struct cairn_usage **out, size_t *n, struct cairn_usage *total)
{
	struct cairn_objmap m;
	struct image_ref *imgs = NULL;
	struct cairn_usage *u = NULL;
	struct cairn_obj *o;
	size_t nimg = 0, pos = 0, want = SIZE_MAX;
	int ret;

	memset(total, 0, sizeof(*total));
	ret = list_images(t, &imgs, &nimg);
	if (ret)
		return ret;
	if (nimg > UINT32_MAX - 1) {
		free(imgs);
		return cairn_err(-EOVERFLOW, "too many images");
	}
	for (size_t i = 0; only && i < nimg; i++)
		if (cairn_id_eq(&imgs[i].id, only))
			want = i;
	if (only && want == SIZE_MAX) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		free(imgs);
		cairn_id_hex(only, hex);
		return cairn_err(-ENOENT, "no image %s", hex);
	}
	u = calloc(nimg ? nimg : 1, sizeof(*u));
	if (!u) {
		free(imgs);
		return -ENOMEM;
	}
	cairn_objmap_init(&m);
	for (size_t i = 0; i < nimg; i++) {
		struct usage_walk uw = { .u = &u[i] };

		u[i].image = imgs[i].id;
		u[i].logical_bytes = imgs[i].img.logical_size;
		total->logical_bytes += imgs[i].img.logical_size;
		ret = cairn_walk_image(t, &m, (uint32_t)i + 1, 0, &imgs[i].img.root,
				       imgs[i].img.layers, imgs[i].img.nlayers, usage_visit, &uw);
		if (ret)
			goto out;
	}
	while ((o = cairn_objmap_next(&m, &pos))) {
		if (o->state == CAIRN_OBJ_REMOTE) {
			total->remote++;
			total->remote_bytes += o->vlen;
			continue;
		}
		if (o->state != CAIRN_OBJ_OK) {
			total->missing++;
			continue;
		}
		total->stored_bytes += o->vlen;
		if (o->kind == CAIRN_OBJ_CHUNK) {
			total->chunks++;
			total->chunk_bytes += o->vlen;
		} else if (o->kind == CAIRN_OBJ_CONTENT)
			total->contents++;
		else
			total->nodes++;
		if (o->walks == 1) {
			u[o->owner - 1].unique_bytes += o->vlen;
			total->unique_bytes += o->vlen;
		}
	}
	if (only) {
		u[0] = u[want];
		nimg = 1;
	}
	*out = steal_pointer(&u);
	*n = nimg;
out:
	cairn_objmap_release(&m);
	free(u);
	free(imgs);
	return ret;
}
