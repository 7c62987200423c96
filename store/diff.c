/* SPDX-License-Identifier: MIT */
/*
 * diff.c - tree diff: a merge of sorted directory entries that descends
 * only where node ids differ (see diff.h).
 */
#include "diff.h"

#include <stdio.h>

#include "read.h"

static const char *const what_names[CAIRN_DIFF_WHAT_COUNT] = {
	"type", "content", "mode", "owner", "mtime", "xattrs", "target", "device", "links",
	"opaque",
};

const char *cairn_diff_what_name(unsigned bit)
{
	for (unsigned i = 0; i < CAIRN_DIFF_WHAT_COUNT; i++)
		if (bit == 1u << i)
			return what_names[i];
	return NULL;
}

unsigned cairn_diff_nodes(const struct cairn_node_view *a, const struct cairn_node_view *b)
{
	unsigned what = 0;

	if (a->type != b->type)
		what |= CAIRN_DIFF_TYPE;
	if (a->mode != b->mode)
		what |= CAIRN_DIFF_MODE;
	if (a->uid != b->uid || a->gid != b->gid)
		what |= CAIRN_DIFF_OWNER;
	if (a->mtime_sec != b->mtime_sec || a->mtime_nsec != b->mtime_nsec)
		what |= CAIRN_DIFF_MTIME;
	/* xattrs are encoded canonically (sorted, unique): equal bytes, equal sets */
	if (a->nxattr != b->nxattr || a->xattrs_len != b->xattrs_len ||
	    memcmp(a->xattrs, b->xattrs, a->xattrs_len) != 0)
		what |= CAIRN_DIFF_XATTRS;
	if (what & CAIRN_DIFF_TYPE)
		return what;
	if (a->flags != b->flags)
		what |= CAIRN_DIFF_OPAQUE;
	if (a->nlink != b->nlink || !cairn_id_eq(&a->link_key, &b->link_key))
		what |= CAIRN_DIFF_LINKS;
	switch (a->type) {
	case CAIRN_NODE_REG:
		/* the content id hashes the bytes; size and kind follow from them */
		if (!cairn_id_eq(&a->content, &b->content) || a->size != b->size ||
		    a->content_kind != b->content_kind)
			what |= CAIRN_DIFF_CONTENT;
		break;
	case CAIRN_NODE_LNK:
		if (a->target_len != b->target_len ||
		    memcmp(a->target, b->target, a->target_len) != 0)
			what |= CAIRN_DIFF_TARGET;
		break;
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_BLK:
		if (a->major != b->major || a->minor != b->minor)
			what |= CAIRN_DIFF_DEVICE;
		break;
	default:
		break;
	}
	return what;
}

struct differ {
	struct cairn_txn *t;
	unsigned flags;
	cairn_diff_fn fn;
	void *ctx;
	struct cairn_buf path; /* "/a/b" without the NUL kept after it; "" is the root */
	struct cairn_diff_stats st;
};

static const char *path_str(const struct differ *d)
{
	return d->path.len ? (const char *)d->path.data : "/";
}

/* Reads a node; a missing or damaged one is an error naming the path. */
static int get(struct differ *d, const struct cairn_id *id, struct cairn_node_view *v)
{
	int ret;

	d->st.nodes_read++;
	ret = cairn_node_get(d->t, id, 0, v);
	if (ret) {
		char msg[256];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		return cairn_err(ret, "'%s': %s", path_str(d), msg);
	}
	return 0;
}

static int path_push(struct differ *d, const struct cairn_dirent *e)
{
	int ret = cairn_buf_reserve(&d->path, e->name_len + 2);

	if (ret)
		return ret;
	d->path.data[d->path.len++] = '/';
	memcpy(d->path.data + d->path.len, e->name, e->name_len);
	d->path.len += e->name_len;
	d->path.data[d->path.len] = '\0';
	return 0;
}

static void path_pop(struct differ *d, size_t len)
{
	d->path.len = len;
	if (d->path.data)
		d->path.data[len] = '\0';
}

static int report(struct differ *d, enum cairn_diff_kind kind, unsigned what,
		  const struct cairn_id *old_id, const struct cairn_node_view *old,
		  const struct cairn_id *new_id, const struct cairn_node_view *new)
{
	struct cairn_diff_change c = {
		.kind = kind,
		.what = what,
		.path = path_str(d),
		.path_len = d->path.len ? d->path.len : 1,
		.old_id = old_id,
		.new_id = new_id,
		.old = old,
		.new = new,
	};

	d->st.changes++;
	return d->fn ? d->fn(d->ctx, &c) : 0;
}

static int entry(struct differ *d, const struct cairn_node_view *dir, uint32_t i,
		 struct cairn_dirent *e)
{
	int ret = cairn_dir_entry(dir, i, e);

	if (ret)
		return cairn_err(ret, "'%s': a directory entry is damaged", path_str(d));
	return 0;
}

static int too_deep(struct differ *d)
{
	return cairn_err_too_deep(path_str(d));
}

/* Reports everything below dir as added or removed (CAIRN_DIFF_EXPAND). */
static int expand(struct differ *d, enum cairn_diff_kind kind, const struct cairn_node_view *dir,
		  unsigned depth)
{
	size_t base = d->path.len;
	int ret = 0;

	if (depth >= CAIRN_DEPTH_MAX)
		return too_deep(d);
	for (uint32_t i = 0; i < dir->nentries && !ret; i++) {
		struct cairn_node_view v;
		struct cairn_dirent e;

		d->st.entries_visited++;
		if ((ret = entry(d, dir, i, &e)) || (ret = path_push(d, &e)) ||
		    (ret = get(d, &e.id, &v)))
			break;
		if (kind == CAIRN_DIFF_ADDED)
			ret = report(d, kind, 0, NULL, NULL, &e.id, &v);
		else
			ret = report(d, kind, 0, &e.id, &v, NULL, NULL);
		if (ret == 0 && v.type == CAIRN_NODE_DIR)
			ret = expand(d, kind, &v, depth + 1);
		if (ret == CAIRN_DIFF_PRUNE)
			ret = 0;
		path_pop(d, base);
	}
	return ret;
}

/* One side only: the entry e of the directory at the current path. */
static int one_side(struct differ *d, enum cairn_diff_kind kind, const struct cairn_dirent *e,
		    unsigned depth)
{
	struct cairn_node_view v;
	int ret = get(d, &e->id, &v);

	if (ret)
		return ret;
	if (kind == CAIRN_DIFF_ADDED)
		ret = report(d, kind, 0, NULL, NULL, &e->id, &v);
	else
		ret = report(d, kind, 0, &e->id, &v, NULL, NULL);
	if (ret == 0 && (d->flags & CAIRN_DIFF_EXPAND) && v.type == CAIRN_NODE_DIR)
		ret = expand(d, kind, &v, depth + 1);
	return ret == CAIRN_DIFF_PRUNE ? 0 : ret;
}

static int pair(struct differ *d, const struct cairn_id *old_id, const struct cairn_id *new_id,
		unsigned depth);

/* Merges two directories' sorted entries; equal ids are skipped unread. */
static int merge(struct differ *d, const struct cairn_node_view *a,
		 const struct cairn_node_view *b, unsigned depth)
{
	size_t base = d->path.len;
	struct cairn_dir_merge m;
	struct cairn_dirent ea, eb;
	int side, ret = 0;

	if (depth >= CAIRN_DEPTH_MAX)
		return too_deep(d);
	cairn_dir_merge_init(&m, a, b);
	while (!ret && (side = cairn_dir_merge_next(&m, &ea, &eb)) > 0) {
		d->st.entries_visited++;
		if (side == CAIRN_MERGE_BOTH && cairn_id_eq(&ea.id, &eb.id))
			continue; /* the same subtree, however big */
		if ((ret = path_push(d, side & CAIRN_MERGE_A ? &ea : &eb)))
			break;
		if (side == CAIRN_MERGE_A)
			ret = one_side(d, CAIRN_DIFF_REMOVED, &ea, depth);
		else if (side == CAIRN_MERGE_B)
			ret = one_side(d, CAIRN_DIFF_ADDED, &eb, depth);
		else
			ret = pair(d, &ea.id, &eb.id, depth + 1);
		path_pop(d, base);
	}
	if (!ret && side < 0)
		ret = cairn_err(side, "'%s': a directory entry is damaged", path_str(d));
	return ret;
}

/* The same path on both sides, with different ids. */
static int pair(struct differ *d, const struct cairn_id *old_id, const struct cairn_id *new_id,
		unsigned depth)
{
	struct cairn_node_view a, b;
	unsigned what;
	int ret;

	if ((ret = get(d, old_id, &a)) || (ret = get(d, new_id, &b)))
		return ret;
	what = cairn_diff_nodes(&a, &b);
	if (what)
		ret = report(d, CAIRN_DIFF_MODIFIED, what, old_id, &a, new_id, &b);
	if (ret)
		return ret == CAIRN_DIFF_PRUNE ? 0 : ret;
	if (a.type == CAIRN_NODE_DIR && b.type == CAIRN_NODE_DIR)
		return merge(d, &a, &b, depth);
	if (!(d->flags & CAIRN_DIFF_EXPAND))
		return 0;
	if (a.type == CAIRN_NODE_DIR)
		return expand(d, CAIRN_DIFF_REMOVED, &a, depth);
	if (b.type == CAIRN_NODE_DIR)
		return expand(d, CAIRN_DIFF_ADDED, &b, depth);
	return 0;
}

int cairn_diff_trees(struct cairn_txn *t, const struct cairn_id *old_root,
		     const struct cairn_id *new_root, unsigned flags, cairn_diff_fn fn, void *ctx,
		     struct cairn_diff_stats *stats)
{
	struct differ d = { .t = t, .flags = flags, .fn = fn, .ctx = ctx };
	int ret = 0;

	if (!cairn_id_eq(old_root, new_root))
		ret = pair(&d, old_root, new_root, 0);
	cairn_buf_release(&d.path);
	if (stats)
		*stats = d.st;
	return ret;
}
