/* SPDX-License-Identifier: MIT */
/*
 * stack.c - a layer over a flattened tree (see stack.h).
 *
 * The result is built in memory as a tree of "expanded" directories whose
 * entries are either references to existing nodes (of the base or of the
 * layer, by id) or further expanded directories; only what the layer
 * touches is expanded. Four passes:
 *
 *   1. merge: walk the layer and the base side by side, name by name
 *      (both directories are sorted), noting every base hard-link group a
 *      deleted or replaced base entry belonged to;
 *   2. only if some group lost a member: find its survivors in depth-first
 *      name order, expanding the base directories that hold them;
 *   3. re-encode each such group for its survivors;
 *   4. write the expanded directories bottom-up, then count the result.
 *
 * Everything is read in place through one read transaction, held for the
 * whole call: names in the expanded tree point into the map.
 */
#include "stack.h"

#include <stdio.h>

#include "read.h"
#include "walk.h"

/* Entries of the object map, beside the walker's kinds. */
enum {
	K_GROUP = CAIRN_OBJ_USER,  /* a base group that lost a member: aux = index */
	K_DROPPED,                 /* a dropped base directory already scanned */
	K_NO_MEMBERS,              /* a base directory holding no member of a lost group */
	K_COUNTED,                 /* a directory counted: vlen entries, len unlinked bytes */
	K_LINKED,                  /* a hard-linked file whose bytes are counted */
};

enum origin {
	FROM_BASE = 1,  /* the entry (and all below) is the base's */
	FROM_LAYER = 2, /* the layer's, whiteouts and opaque flags removed */
	MERGED = 3,     /* both */
};

struct sdir;

struct sent {
	const char *name; /* in the map */
	uint16_t name_len;
	uint8_t type;
	uint8_t origin;
	int32_t group;    /* >= 0: a surviving member of groups[group], re-encoded */
	struct cairn_id id; /* a reference: its node; an expanded directory: once built */
	struct sdir *dir; /* expanded, or NULL */
};

struct sdir {
	struct cairn_id meta; /* the directory node whose attributes this one keeps */
	struct sent *ents;    /* sorted by name */
	uint32_t n, cap;
};

/* A base hard-link group that lost a member. */
struct sgroup {
	struct cairn_id node; /* its members' node id in the base */
	uint32_t survivors;
	char *first;          /* the first survivor's path */
	size_t first_len;
	uint64_t size;        /* regular file bytes */
	struct cairn_id new_id;
};

struct stack {
	struct cairn_writer *w;
	struct cairn_txn *t;
	struct cairn_objmap map;
	struct sgroup *groups;
	size_t ngroups, groups_cap;
	struct cairn_buf path; /* pass 2: the current path, no NUL */
	uint64_t nodes, unlinked, linked;
};

static int too_deep(void)
{
	return cairn_err_too_deep(NULL);
}

/* Reads a node the parent says is of type want. */
static int get_node(struct stack *st, const struct cairn_id *id, uint8_t want,
		    struct cairn_node_view *v)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	int ret = cairn_node_get(st->t, id, 0, v);

	if (ret)
		return ret;
	if (v->type != want) {
		cairn_id_hex(id, hex);
		return cairn_err(-EUCLEAN, "node %s is not of the type its directory says "
					   "(run 'cairn fsck')", hex);
	}
	return 0;
}

static void sdir_free(struct sdir *d)
{
	if (!d)
		return;
	for (uint32_t i = 0; i < d->n; i++)
		sdir_free(d->ents[i].dir);
	free(d->ents);
	free(d);
}

static struct sdir *sdir_new(const struct cairn_id *meta)
{
	struct sdir *d = calloc(1, sizeof(*d));

	if (d)
		d->meta = *meta;
	return d;
}

static int sdir_add(struct sdir *d, const struct cairn_dirent *e, uint8_t origin,
		    struct sdir *sub)
{
	struct sent *s;

	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 8;
		struct sent *p = cap > d->cap ? realloc(d->ents, cap * sizeof(*p)) : NULL;

		if (!p)
			return -ENOMEM;
		d->ents = p;
		d->cap = cap;
	}
	s = &d->ents[d->n++];
	s->name = e->name;
	s->name_len = (uint16_t)e->name_len;
	s->type = e->type;
	s->origin = origin;
	s->group = -1;
	s->id = e->id;
	s->dir = sub;
	return 0;
}

/* --- pass 1: merge ------------------------------------------------------ */

/* The group of a base node with nlink > 1, added if new. */
static int group_note(struct stack *st, const struct cairn_id *id)
{
	struct cairn_obj *o;
	bool added;
	int ret = cairn_objmap_add(&st->map, K_GROUP, id, &o, &added);

	if (ret || !added)
		return ret;
	if (st->ngroups == st->groups_cap) {
		size_t cap = st->groups_cap ? st->groups_cap * 2 : 16;
		struct sgroup *g = realloc(st->groups, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		st->groups = g;
		st->groups_cap = cap;
	}
	o->aux = (uint32_t)st->ngroups;
	memset(&st->groups[st->ngroups], 0, sizeof(st->groups[0]));
	st->groups[st->ngroups++].node = *id;
	return 0;
}

static int base_whiteout(const char *name, size_t len)
{
	return cairn_err(-EUCLEAN, "the base tree holds a whiteout ('%.*s'): it is not a "
				   "flattened tree", (int)len, name);
}

static int damaged_dir(void)
{
	return cairn_err(-EUCLEAN, "a damaged directory (run 'cairn fsck')");
}

/* The i-th entry of a directory read from the store. */
static int dir_entry(const struct cairn_node_view *v, uint32_t i, struct cairn_dirent *e)
{
	return cairn_dir_entry(v, i, e) ? damaged_dir() : 0;
}

/* A base entry the layer deletes or replaces: note the groups it breaks. */
static int drop(struct stack *st, const struct cairn_dirent *e, unsigned depth)
{
	struct cairn_node_view v;
	struct cairn_dirent c;
	struct cairn_obj *o;
	bool added;
	int ret;

	if (depth > CAIRN_DEPTH_MAX)
		return too_deep();
	if (e->type == CAIRN_NODE_WHITEOUT)
		return base_whiteout(e->name, e->name_len);
	if (e->type != CAIRN_NODE_DIR) {
		ret = get_node(st, &e->id, e->type, &v);
		if (ret)
			return ret;
		return v.nlink > 1 ? group_note(st, &e->id) : 0;
	}
	ret = cairn_objmap_add(&st->map, K_DROPPED, &e->id, &o, &added);
	if (ret || !added)
		return ret;
	ret = get_node(st, &e->id, CAIRN_NODE_DIR, &v);
	for (uint32_t i = 0; !ret && i < v.nentries; i++) {
		ret = dir_entry(&v, i, &c);
		if (!ret)
			ret = drop(st, &c, depth + 1);
	}
	return ret;
}

static int merge(struct stack *st, const struct cairn_node_view *base,
		 const struct cairn_id *layer_id, const struct cairn_node_view *layer,
		 unsigned depth, struct sdir **out, bool *same);

/* Adds a layer entry that has no base entry to merge with. */
static int add_layer(struct stack *st, struct sdir *d, const struct cairn_dirent *le,
		     unsigned depth, bool *same)
{
	struct cairn_node_view lv;
	struct sdir *sub = NULL;
	bool sub_same;
	int ret;

	if (le->type == CAIRN_NODE_WHITEOUT) {
		*same = false; /* it goes */
		return 0;
	}
	if (le->type != CAIRN_NODE_DIR)
		return sdir_add(d, le, FROM_LAYER, NULL);
	ret = get_node(st, &le->id, CAIRN_NODE_DIR, &lv);
	if (!ret)
		ret = merge(st, NULL, &le->id, &lv, depth + 1, &sub, &sub_same);
	if (ret)
		return ret;
	if (sub_same) { /* nothing to clean below: the layer's node as it is */
		sdir_free(sub);
		sub = NULL;
	} else {
		*same = false;
	}
	ret = sdir_add(d, le, FROM_LAYER, sub);
	if (ret)
		sdir_free(sub);
	return ret;
}

/* A name in both: the layer's entry wins, or two directories merge. */
static int add_both(struct stack *st, struct sdir *d, const struct cairn_dirent *be,
		    const struct cairn_dirent *le, unsigned depth)
{
	struct cairn_node_view bv, lv;
	struct sdir *sub = NULL;
	bool dummy = true;
	int ret;

	if (be->type == CAIRN_NODE_WHITEOUT)
		return base_whiteout(be->name, be->name_len);
	if (le->type == CAIRN_NODE_DIR && be->type == CAIRN_NODE_DIR) {
		ret = get_node(st, &be->id, CAIRN_NODE_DIR, &bv);
		if (!ret)
			ret = get_node(st, &le->id, CAIRN_NODE_DIR, &lv);
		if (!ret)
			ret = merge(st, &bv, &le->id, &lv, depth + 1, &sub, &dummy);
		if (!ret)
			ret = sdir_add(d, le, MERGED, sub);
		if (ret)
			sdir_free(sub);
		return ret;
	}
	ret = drop(st, be, depth + 1);
	return ret ? ret : add_layer(st, d, le, depth, &dummy);
}

/*
 * Merges the layer directory over the base directory (NULL: none) into a
 * new expanded directory. *same: no base, and nothing in the layer's
 * subtree to clean (no whiteout, no opaque flag): the layer's node serves
 * as it is.
 */
static int merge(struct stack *st, const struct cairn_node_view *base,
		 const struct cairn_id *layer_id, const struct cairn_node_view *layer,
		 unsigned depth, struct sdir **out, bool *same)
{
	bool opaque = base && (layer->flags & CAIRN_NODE_OPAQUE);
	struct cairn_dir_merge m;
	struct sdir *d;
	struct cairn_dirent be, le;
	int side = 0, ret = 0;

	*out = NULL;
	*same = !base && !(layer->flags & CAIRN_NODE_OPAQUE);
	if (depth > CAIRN_DEPTH_MAX)
		return too_deep();
	d = sdir_new(layer_id);
	if (!d)
		return -ENOMEM;
	/* opaque: the base's entries are hidden; the layer's merge with nothing */
	for (uint32_t i = 0; opaque && !ret && i < base->nentries; i++)
		if (!(ret = dir_entry(base, i, &be)))
			ret = drop(st, &be, depth + 1);
	cairn_dir_merge_init(&m, opaque ? NULL : base, layer);
	while (!ret && (side = cairn_dir_merge_next(&m, &be, &le)) > 0) {
		if (side == CAIRN_MERGE_A)
			ret = be.type == CAIRN_NODE_WHITEOUT ? base_whiteout(be.name, be.name_len)
							     : sdir_add(d, &be, FROM_BASE, NULL);
		else if (side == CAIRN_MERGE_B)
			ret = add_layer(st, d, &le, depth, same);
		else
			ret = add_both(st, d, &be, &le, depth);
	}
	if (!ret && side < 0)
		ret = damaged_dir();
	if (ret) {
		sdir_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

/* --- pass 2: the survivors of broken groups ----------------------------- */

static int path_push(struct stack *st, const struct sent *e, size_t *old)
{
	*old = st->path.len;
	if (st->path.len && cairn_buf_append(&st->path, "/", 1))
		return -ENOMEM;
	return cairn_buf_append(&st->path, e->name, e->name_len);
}

/* A base entry that is not a directory: is it a survivor? */
static int note_member(struct stack *st, struct sent *e, bool *found)
{
	struct cairn_obj *o = cairn_objmap_find(&st->map, K_GROUP, &e->id);
	struct sgroup *g;

	if (!o)
		return 0;
	g = &st->groups[o->aux];
	if (g->survivors++ == 0) {
		g->first = malloc(st->path.len ? st->path.len : 1);
		if (!g->first)
			return -ENOMEM;
		memcpy(g->first, st->path.data, st->path.len);
		g->first_len = st->path.len;
	}
	e->group = (int32_t)o->aux;
	*found = true;
	return 0;
}

/* A base directory reached by reference: expanded if it holds survivors. */
static int scan_base(struct stack *st, struct sent *e, unsigned depth, bool *found)
{
	struct cairn_node_view v;
	struct cairn_dirent c;
	struct sdir *d;
	bool any = false, added;
	struct cairn_obj *o;
	int ret = 0;

	if (depth > CAIRN_DEPTH_MAX)
		return too_deep();
	if (cairn_objmap_find(&st->map, K_NO_MEMBERS, &e->id))
		return 0;
	ret = get_node(st, &e->id, CAIRN_NODE_DIR, &v);
	if (ret)
		return ret;
	d = sdir_new(&e->id);
	if (!d)
		return -ENOMEM;
	for (uint32_t i = 0; !ret && i < v.nentries; i++)
		if (!(ret = dir_entry(&v, i, &c)))
			ret = sdir_add(d, &c, FROM_BASE, NULL);
	for (uint32_t i = 0; !ret && i < d->n; i++) {
		struct sent *k = &d->ents[i];
		size_t old;

		ret = path_push(st, k, &old);
		if (ret)
			break;
		if (k->type == CAIRN_NODE_DIR)
			ret = scan_base(st, k, depth + 1, &any);
		else if (k->type == CAIRN_NODE_WHITEOUT)
			ret = base_whiteout(k->name, k->name_len);
		else
			ret = note_member(st, k, &any);
		st->path.len = old;
	}
	if (!ret && any) {
		e->dir = d;
		*found = true;
		return 0;
	}
	sdir_free(d);
	return ret ? ret : cairn_objmap_add(&st->map, K_NO_MEMBERS, &e->id, &o, &added);
}

static int scan(struct stack *st, struct sdir *d, unsigned depth)
{
	bool found = false; /* not needed here: this directory is expanded already */
	int ret = 0;

	if (depth > CAIRN_DEPTH_MAX)
		return too_deep();
	for (uint32_t i = 0; !ret && i < d->n; i++) {
		struct sent *e = &d->ents[i];
		size_t old;

		if (e->origin == FROM_LAYER)
			continue; /* no base member in there */
		ret = path_push(st, e, &old);
		if (ret)
			break;
		if (e->dir)
			ret = scan(st, e->dir, depth + 1);
		else if (e->type == CAIRN_NODE_DIR)
			ret = scan_base(st, e, depth + 1, &found);
		else
			ret = note_member(st, e, &found);
		st->path.len = old;
	}
	return ret;
}

/* --- pass 3: broken groups re-encoded ----------------------------------- */

static int relink(struct stack *st, struct sgroup *g)
{
	struct cairn_node_view v;
	struct cairn_node_build n;
	cleanup_free struct cairn_xattr *xattrs = NULL;
	int ret = cairn_node_get(st->t, &g->node, 0, &v);

	if (ret)
		return ret;
	ret = cairn_node_view_build(&v, &n, &xattrs);
	if (ret)
		return ret;
	g->size = v.type == CAIRN_NODE_REG ? v.size : 0;
	n.nlink = g->survivors;
	memset(&n.link_key, 0, sizeof(n.link_key));
	if (g->survivors > 1 && (ret = cairn_link_key(g->first, g->first_len, &n.link_key)))
		return ret;
	return cairn_writer_put_node(st->w, &n, &g->new_id);
}

/* --- pass 4: writing and counting --------------------------------------- */

static int build(struct stack *st, struct sdir *d, struct cairn_id *out)
{
	cleanup_free struct cairn_dirent *ents = calloc(d->n ? d->n : 1, sizeof(*ents));
	cleanup_free struct cairn_xattr *xattrs = NULL;
	struct cairn_node_build n;
	struct cairn_node_view v;
	int ret;

	if (!ents)
		return -ENOMEM;
	for (uint32_t i = 0; i < d->n; i++) {
		struct sent *e = &d->ents[i];

		if (e->dir && (ret = build(st, e->dir, &e->id)))
			return ret;
		if (e->group >= 0)
			e->id = st->groups[e->group].new_id;
		ents[i].name = e->name;
		ents[i].name_len = e->name_len;
		ents[i].id = e->id;
		ents[i].type = e->type;
	}
	ret = get_node(st, &d->meta, CAIRN_NODE_DIR, &v);
	if (!ret)
		ret = cairn_node_view_build(&v, &n, &xattrs);
	if (ret)
		return ret;
	n.flags = 0;
	n.entries = ents;
	n.nentries = d->n;
	return cairn_writer_put_node(st->w, &n, out);
}

/* A regular file by reference: its bytes, a hard-link group once. */
static int count_file(struct stack *st, const struct cairn_id *id)
{
	struct cairn_node_view v;
	struct cairn_obj *o;
	bool added;
	int ret = get_node(st, id, CAIRN_NODE_REG, &v);

	if (ret)
		return ret;
	if (v.nlink <= 1) {
		st->unlinked += v.size;
		return 0;
	}
	ret = cairn_objmap_add(&st->map, K_LINKED, id, &o, &added);
	if (!ret && added)
		st->linked += v.size;
	return ret;
}

/*
 * A directory by reference. The entries and the unlinked bytes below a
 * directory id are always the same, so they are counted once per id;
 * hard-linked bytes go through K_LINKED, which a second visit finds full.
 */
static int count_tree(struct stack *st, const struct cairn_id *id, unsigned depth)
{
	struct cairn_node_view v;
	struct cairn_dirent e;
	struct cairn_obj *o = cairn_objmap_find(&st->map, K_COUNTED, id);
	uint64_t nodes0 = st->nodes, unlinked0 = st->unlinked;
	bool added;
	int ret;

	if (o) {
		st->nodes += o->vlen;
		st->unlinked += o->len;
		return 0;
	}
	if (depth > CAIRN_DEPTH_MAX)
		return too_deep();
	ret = get_node(st, id, CAIRN_NODE_DIR, &v);
	for (uint32_t i = 0; !ret && i < v.nentries; i++) {
		ret = dir_entry(&v, i, &e);
		if (ret)
			break;
		st->nodes++;
		if (e.type == CAIRN_NODE_DIR)
			ret = count_tree(st, &e.id, depth + 1);
		else if (e.type == CAIRN_NODE_REG)
			ret = count_file(st, &e.id);
		else if (e.type == CAIRN_NODE_WHITEOUT)
			ret = base_whiteout(e.name, e.name_len);
	}
	if (ret)
		return ret;
	ret = cairn_objmap_add(&st->map, K_COUNTED, id, &o, &added);
	if (ret)
		return ret;
	o->vlen = st->nodes - nodes0;
	o->len = st->unlinked - unlinked0;
	return 0;
}

static int count(struct stack *st, const struct sdir *d, unsigned depth)
{
	int ret = 0;

	for (uint32_t i = 0; !ret && i < d->n; i++) {
		const struct sent *e = &d->ents[i];

		st->nodes++;
		if (e->dir) {
			ret = count(st, e->dir, depth + 1);
		} else if (e->group >= 0) {
			const struct sgroup *g = &st->groups[e->group];
			struct cairn_obj *o;
			bool added;

			if (g->survivors == 1) {
				st->unlinked += g->size;
			} else {
				ret = cairn_objmap_add(&st->map, K_LINKED, &g->new_id, &o, &added);
				if (!ret && added)
					st->linked += g->size;
			}
		} else if (e->type == CAIRN_NODE_DIR) {
			ret = count_tree(st, &e->id, depth + 1);
		} else if (e->type == CAIRN_NODE_REG) {
			ret = count_file(st, &e->id);
		}
	}
	return ret;
}

/* --- the whole ---------------------------------------------------------- */

int cairn_stack(struct cairn_writer *w, const struct cairn_id *base, const struct cairn_id *layer,
		struct cairn_stack_result *res)
{
	struct stack st = { .w = w };
	struct cairn_node_view bv, lv;
	struct sdir *root = NULL;
	bool same = false;
	int ret;

	cairn_objmap_init(&st.map);
	ret = cairn_txn_begin(cairn_writer_store(w), false, &st.t);
	if (ret)
		return ret;
	ret = get_node(&st, layer, CAIRN_NODE_DIR, &lv);
	if (!ret && base)
		ret = get_node(&st, base, CAIRN_NODE_DIR, &bv);
	if (!ret)
		ret = merge(&st, base ? &bv : NULL, layer, &lv, 0, &root, &same);
	if (!ret && st.ngroups) {
		ret = scan(&st, root, 0);
		for (size_t i = 0; !ret && i < st.ngroups; i++)
			if (st.groups[i].survivors)
				ret = relink(&st, &st.groups[i]);
	}
	if (ret)
		goto out;
	st.nodes = 1;
	if (same) { /* no base, a clean layer: the layer's tree itself */
		res->root = *layer;
		ret = count_tree(&st, layer, 0);
	} else {
		ret = build(&st, root, &res->root);
		if (!ret)
			ret = count(&st, root, 0);
	}
	res->nodes = st.nodes;
	res->logical_size = st.unlinked + st.linked;
out:
	sdir_free(root);
	for (size_t i = 0; i < st.ngroups; i++)
		free(st.groups[i].first);
	free(st.groups);
	cairn_buf_release(&st.path);
	cairn_objmap_release(&st.map);
	cairn_txn_abort(st.t);
	return ret;
}
