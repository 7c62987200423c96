/* SPDX-License-Identifier: MIT */
/*
 * hidden.c - what an upper directory hides of a switch (hidden.h).
 *
 * The one idea: the diff engine already walks only where two images
 * differ, so each change is looked up in the upper tree along its path,
 * component by component (fstatat and O_PATH opens that never follow a
 * symlink the container planted). The first upper entry on the way that
 * stands in front of the image decides: a non-directory or a whiteout
 * hides everything at and below it, an opaque or renamed directory too,
 * a plain directory only its own attributes.
 */
#include "hidden.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diff.h"
#include "image.h"
#include "upper.h"

struct walker {
	int tree_fd;
	hidden_fn fn;
	void *ctx;
	struct cairn_buf last; /* the last entry reported: what is below it is its */
};

static const char *change_name(enum cairn_diff_kind k)
{
	return k == CAIRN_DIFF_ADDED ? "added" : k == CAIRN_DIFF_REMOVED ? "removed" : "modified";
}

static bool below_last(const struct walker *w, const char *path, size_t len)
{
	size_t n = w->last.len;

	return n && len > n && !memcmp(path, w->last.data, n) && (n == 1 || path[n] == '/');
}

static int report(struct walker *w, const struct cairn_diff_change *c, size_t len,
		  const char *kind)
{
	struct hidden_entry h = { .path = c->path, .path_len = len, .kind = kind,
				  .change = change_name(c->kind) };
	char *p = strndup(c->path, len);
	int ret;

	if (!p)
		return -ENOMEM;
	h.path = p;
	w->last.len = 0;
	/* a plain directory hides only its own attributes, not what is below it */
	ret = strcmp(kind, "directory") ? cairn_buf_append(&w->last, p, len) : 0;
	if (!ret)
		ret = w->fn(w->ctx, &h);
	free(p);
	return ret;
}

/* The kind of upper directory that hides what is below it, or NULL. */
static const char *dir_kind(const struct cfs_marks *m)
{
	return m->opaque ? "opaque" : m->has_redirect ? "renamed" : NULL;
}

/*
 * A directory's own attributes that matter changed (its mtime changes with
 * every entry added or removed: an upper copy hiding that is no news).
 */
static bool dir_attrs_changed(const struct cairn_diff_change *c)
{
	return c->kind == CAIRN_DIFF_MODIFIED && (c->what & ~(unsigned)CAIRN_DIFF_MTIME);
}

static int on_change(void *ctx, const struct cairn_diff_change *c)
{
	struct walker *w = ctx;
	const char *p = c->path + 1, *end = c->path + c->path_len;
	int dfd = w->tree_fd, ret = 0;

	if (below_last(w, c->path, c->path_len))
		return 0;
	if (c->path_len == 1) /* the root: the upper's tree/ has its own attributes */
		return dir_attrs_changed(c) ? report(w, c, 1, "directory") : 0;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t nl = slash ? (size_t)(slash - p) : (size_t)(end - p);
		bool last = !slash;
		size_t at = (size_t)(p - c->path) + nl;
		char name[CAIRN_NAME_MAX + 1];
		const char *kind = NULL;
		struct cfs_marks m;
		struct stat st;
		bool none;
		int fd;

		if (nl > CAIRN_NAME_MAX)
			break;
		memcpy(name, p, nl);
		name[nl] = '\0';
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = errno == ENOENT ? 0 : -errno;
			break; /* nothing of the upper's on the way: the change shows */
		}
		if (cfs_is_whiteout(&st)) {
			/* gone in both is no news */
			if (!(last && c->kind == CAIRN_DIFF_REMOVED))
				ret = report(w, c, at, "whiteout");
			break;
		}
		fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			ret = errno == ENOENT ? 0 : -errno;
			break;
		}
		ret = cfs_upper_marks_read(fd, &m, &none);
		if (!ret && !S_ISDIR(st.st_mode)) {
			kind = m.metacopy ? "metacopy" : "copy";
		} else if (!ret) {
			kind = dir_kind(&m);
			/* a plain directory hides its own attributes, or a non-directory */
			if (!kind && last &&
			    (dir_attrs_changed(c) || (c->new && c->new->type != CAIRN_NODE_DIR) ||
			     (c->old && c->old->type != CAIRN_NODE_DIR)))
				kind = "directory";
		}
		if (!ret && kind)
			ret = report(w, c, at, kind);
		if (ret || kind || last || !S_ISDIR(st.st_mode)) {
			close(fd);
			break;
		}
		if (dfd != w->tree_fd)
			close(dfd);
		dfd = fd;
		p += nl + 1;
	}
	if (dfd != w->tree_fd)
		close(dfd);
	return ret;
}

int hidden_entries(struct cairn_txn *t, int tree_fd, const struct cairn_id *old_image,
		   const struct cairn_id *new_image, hidden_fn fn, void *ctx)
{
	struct walker w = { .tree_fd = tree_fd, .fn = fn, .ctx = ctx };
	struct cairn_image a, b;
	int ret = cairn_image_get(t, old_image, &a);

	if (!ret)
		ret = cairn_image_get(t, new_image, &b);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "the image is not in the store");
	if (!ret)
		ret = cairn_diff_trees(t, &a.root, &b.root, 0, on_change, &w, NULL);
	cairn_buf_release(&w.last);
	return ret;
}

struct summary {
	unsigned n;
	char *buf;
	size_t len, used;
};

static int summarize(void *ctx, const struct hidden_entry *h)
{
	struct summary *s = ctx;

	if (s->n++ < 3 && s->used < s->len)
		s->used += (size_t)snprintf(s->buf + s->used, s->len - s->used, "%s%s",
					    s->n > 1 ? ", " : "", h->path);
	return 0;
}

int hidden_summary(struct cairn_store *s, const char *upper_dir,
		   const struct cairn_id *old_image, const struct cairn_id *new_image, char *buf,
		   size_t len)
{
	char paths[512] = "", hex[CAIRN_ID_HEX_LEN + 1];
	struct summary sum = { .buf = paths, .len = sizeof(paths) };
	struct cfs_upper *u;
	struct cairn_txn *t;
	int ret;

	buf[0] = '\0';
	ret = cfs_upper_open_read(upper_dir, false, &u);
	if (ret)
		return ret;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		ret = hidden_entries(t, u->tree_fd, old_image, new_image, summarize, &sum);
		cairn_txn_abort(t);
	}
	cfs_upper_close(u);
	if (ret)
		return ret;
	if (sum.n) {
		cairn_id_hex(old_image, hex);
		snprintf(buf, len, "its upper hides %u path%s this switch changed: %s%s (cairn "
				   "changes %s --against %.12s)",
			 sum.n, sum.n == 1 ? "" : "s", paths, sum.n > 3 ? ", ..." : "", upper_dir,
			 hex);
	}
	return (int)sum.n;
}
