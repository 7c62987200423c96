/* SPDX-License-Identifier: MIT */
/*
 * import_dir.c - a directory tree becomes a Merkle tree of nodes.
 *
 * Two passes. The first walks the tree to count entries and bytes (for
 * progress) and to find hard-link groups: a group is named by the path of
 * its first member in depth-first name order and sized by its members
 * inside the tree, which the second pass needs before it can encode any
 * member. The second pass builds nodes bottom-up: a directory's node is
 * written after all its children, since it names them by id.
 *
 * Everything is opened relative to a directory fd with O_NOFOLLOW, so a
 * symlink swapped in during the import is never followed. A regular file is
 * checked before and after it is read (inode, size, mtime, ctime): a file
 * that changes or vanishes during the import fails the import, which then
 * publishes nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <xxhash.h>

#include "import.h"
#include "read.h"
#include "stack.h"
#include "upper.h"

#define READ_BUF (1u << 20)

struct link_group {
	dev_t dev;
	ino_t ino;
	uint32_t members; /* inside the tree */
	bool counted;     /* its bytes are in logical_size */
	struct cairn_id key;
};

struct walk {
	struct cairn_writer *w;
	const char *src;
	dev_t store_dev;
	ino_t store_ino;
	bool progress;

	struct link_group *links; /* sorted by (dev, ino) after pass 1 */
	size_t nlinks, links_cap;

	uint64_t total_entries, total_bytes;
	uint64_t done_entries, done_bytes;
	uint64_t logical_size;
	int64_t start_ns, last_ns;

	uint8_t *buf;
	struct cairn_buf path; /* relative path of the current entry, NUL-terminated */
	unsigned depth;        /* names in path */
	char *target;          /* a symlink's target: CAIRN_SYMLINK_MAX + 2 bytes */

	/* an upper directory (import_upper): markers read, whiteouts kept */
	struct cairn_store *store;
	bool upper;
};

/* cairn's markers on an upper object (upper.h), read off its xattrs. */
struct upper_marks {
	struct cfs_marks m;
	struct cairn_buf names; /* unescaped xattr names */
};

static int link_cmp(const void *a, const void *b)
{
	const struct link_group *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static struct link_group *link_find(struct walk *wk, dev_t dev, ino_t ino)
{
	struct link_group key = { .dev = dev, .ino = ino };

	return bsearch(&key, wk->links, wk->nlinks, sizeof(key), link_cmp);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Reads a directory's names (no . and ..), sorted by bytes. Takes no ownership of fd. */
static int list_dir(int fd, char ***out, size_t *count)
{
	int dup_fd = dup(fd);
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (dup_fd < 0)
		return -errno;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return -errno;
	}
	rewinddir(d);
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*p));

			if (!p)
				goto nomem;
			names = p;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto nomem;
		n++;
		errno = 0;
	}
	if (errno) {
		int err = -errno;

		closedir(d);
		free_names(names, n);
		return err;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*count = n;
	return 0;
nomem:
	closedir(d);
	free_names(names, n);
	return -ENOMEM;
}

static const char *path_show(struct walk *wk);

/*
 * Appends "/name" (or "name" at the root) to the path; returns the old
 * length. A path deeper than CAIRN_DEPTH_MAX is refused here, which bounds
 * both passes' recursion (and the directory fds they hold).
 */
static int path_push(struct walk *wk, const char *name, size_t *old)
{
	int ret;

	*old = wk->path.len;
	wk->depth++;
	if (wk->path.len) {
		wk->path.data[wk->path.len] = '/';
		wk->path.len++;
	}
	ret = cairn_buf_append(&wk->path, name, strlen(name) + 1);
	if (ret)
		return ret;
	wk->path.len--; /* keep the NUL outside len */
	if (wk->depth > CAIRN_DEPTH_MAX) {
		cleanup_free char *p = NULL;

		if (asprintf(&p, "%s/%s", wk->src, path_show(wk)) < 0)
			return -ENOMEM;
		return cairn_err_too_deep(p);
	}
	return 0;
}

static void path_pop(struct walk *wk, size_t old)
{
	wk->depth--;
	wk->path.len = old;
	if (wk->path.data)
		wk->path.data[old] = '\0';
}

static const char *path_show(struct walk *wk)
{
	return wk->path.len ? (const char *)wk->path.data : ".";
}

static int fail_errno(struct walk *wk, int err, const char *what)
{
	char ebuf[128];

	return cairn_err(-err, "cannot %s '%s/%s': %s", what, wk->src, path_show(wk),
			 cairn_strerror(err, ebuf, sizeof(ebuf)));
}

static void progress(struct walk *wk, bool final)
{
	int64_t now = cairn_now_ns();
	double secs;
	char a[32], b[32], c[32];

	if (!wk->progress || (!final && now - wk->last_ns < 200000000))
		return;
	wk->last_ns = now;
	secs = (double)(now - wk->start_ns) / 1e9;
	fprintf(stderr, "\rimporting: %llu/%llu entries, %s/%s, %s/s   ",
		(unsigned long long)wk->done_entries, (unsigned long long)wk->total_entries,
		cli_bytes(a, sizeof(a), wk->done_bytes), cli_bytes(b, sizeof(b), wk->total_bytes),
		cli_bytes(c, sizeof(c), secs > 0 ? (unsigned long long)(wk->done_bytes / secs) : 0));
	if (final)
		fputc('\n', stderr);
}

/* Pass 1: counts and hard-link groups. */
static int scan(struct walk *wk, int dirfd)
{
	char **names = NULL;
	size_t n = 0, old;
	int ret;

	ret = list_dir(dirfd, &names, &n);
	if (ret)
		return fail_errno(wk, -ret, "read directory");
	for (size_t i = 0; i < n && !ret; i++) {
		struct stat st;

		ret = path_push(wk, names[i], &old);
		if (ret)
			break;
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = fail_errno(wk, errno, "stat");
			break;
		}
		wk->total_entries++;
		if (S_ISDIR(st.st_mode)) {
			cleanup_fd int fd = -1;

			if (st.st_dev == wk->store_dev && st.st_ino == wk->store_ino) {
				ret = cairn_err(-EINVAL, "the store is inside the tree being imported "
							 "('%s/%s')", wk->src, path_show(wk));
				break;
			}
			fd = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				ret = fail_errno(wk, errno, "open directory");
				break;
			}
			ret = scan(wk, fd);
		} else {
			if (S_ISREG(st.st_mode))
				wk->total_bytes += (uint64_t)st.st_size;
			if (st.st_nlink > 1) {
				struct link_group *g = NULL;

				for (size_t j = 0; j < wk->nlinks; j++) /* sorted after the pass */
					if (wk->links[j].dev == st.st_dev &&
					    wk->links[j].ino == st.st_ino) {
						g = &wk->links[j];
						break;
					}
				if (g) {
					g->members++;
				} else {
					static const char prefix[] = "cairn-link";
					XXH3_state_t *hs;
					XXH128_canonical_t c;

					if (wk->nlinks == wk->links_cap) {
						size_t cap = wk->links_cap ? wk->links_cap * 2 : 64;
						struct link_group *p =
							realloc(wk->links, cap * sizeof(*p));

						if (!p) {
							ret = -ENOMEM;
							break;
						}
						wk->links = p;
						wk->links_cap = cap;
					}
					g = &wk->links[wk->nlinks++];
					g->dev = st.st_dev;
					g->ino = st.st_ino;
					g->members = 1;
					g->counted = false;
					hs = XXH3_createState();
					if (!hs) {
						ret = -ENOMEM;
						break;
					}
					XXH3_128bits_reset(hs);
					XXH3_128bits_update(hs, prefix, sizeof(prefix) - 1);
					XXH3_128bits_update(hs, wk->path.data, wk->path.len);
					XXH128_canonicalFromHash(&c, XXH3_128bits_digest(hs));
					XXH3_freeState(hs);
					memcpy(g->key.b, c.digest, CAIRN_ID_LEN);
				}
			}
		}
		path_pop(wk, old);
	}
	free_names(names, n);
	return ret;
}

static int xattr_cmp(const void *a, const void *b)
{
	const struct cairn_xattr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/*
 * Reads all xattrs of an object, sorted by name. By fd when fd >= 0, else
 * by path without following a final symlink. The arrays are freed by the
 * caller (names and values live in *store).
 */
static int read_xattrs(struct walk *wk, int fd, const char *path, struct cairn_xattr **out,
		       size_t *count, struct cairn_buf *store)
{
	ssize_t len, vlen;
	struct cairn_xattr *xs = NULL;
	size_t n = 0;
	char *list = NULL, *p;
	int ret = 0;

	*out = NULL;
	*count = 0;
	store->len = 0;
	for (;;) {
		len = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
		if (len < 0) {
			if (errno == ENOTSUP)
				return 0;
			return fail_errno(wk, errno, "list xattrs of");
		}
		if (len == 0)
			return 0;
		free(list);
		list = malloc((size_t)len);
		if (!list)
			return -ENOMEM;
		len = fd >= 0 ? flistxattr(fd, list, (size_t)len) : llistxattr(path, list, (size_t)len);
		if (len >= 0)
			break;
		if (errno != ERANGE) {
			ret = fail_errno(wk, errno, "list xattrs of");
			goto out;
		}
	}
	for (p = list; p < list + len; p += strlen(p) + 1)
		n++;
	xs = calloc(n, sizeof(*xs));
	if (!xs) {
		ret = -ENOMEM;
		goto out;
	}
	n = 0;
	for (p = list; p < list + len; p += strlen(p) + 1) {
		for (;;) {
			vlen = fd >= 0 ? fgetxattr(fd, p, NULL, 0) : lgetxattr(path, p, NULL, 0);
			if (vlen < 0 && errno == ENODATA)
				break; /* removed since the listing */
			if (vlen < 0) {
				ret = fail_errno(wk, errno, "read xattrs of");
				goto out;
			}
			if (vlen > (ssize_t)CAIRN_XATTR_VALUE_MAX) {
				ret = cairn_err(-E2BIG, "xattr '%s' of '%s/%s' is too large", p,
						wk->src, path_show(wk));
				goto out;
			}
			ret = cairn_buf_reserve(store, (size_t)vlen + 1);
			if (ret)
				goto out;
			vlen = fd >= 0 ? fgetxattr(fd, p, store->data + store->len, (size_t)vlen)
				       : lgetxattr(path, p, store->data + store->len, (size_t)vlen);
			if (vlen >= 0)
				break;
			if (errno != ERANGE) {
				ret = fail_errno(wk, errno, "read xattrs of");
				goto out;
			}
		}
		if (vlen < 0)
			continue;
		/* offsets for now: store->data may still move */
		xs[n].value = (const void *)(uintptr_t)store->len;
		xs[n].value_len = (size_t)vlen;
		store->len += (size_t)vlen;
		xs[n].name_len = strlen(p);
		ret = cairn_buf_append(store, p, xs[n].name_len + 1);
		if (ret)
			goto out;
		xs[n].name = (const char *)(uintptr_t)(store->len - xs[n].name_len - 1);
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		xs[i].value = store->data + (uintptr_t)xs[i].value;
		xs[i].name = (const char *)store->data + (uintptr_t)xs[i].name;
	}
	qsort(xs, n, sizeof(*xs), xattr_cmp);
	*out = xs;
	*count = n;
	xs = NULL;
out:
	free(xs);
	free(list);
	return ret;
}

static void fill_common(struct cairn_node_build *n, const struct stat *st)
{
	n->mode = st->st_mode & 07777;
	n->uid = st->st_uid;
	n->gid = st->st_gid;
	n->mtime_sec = st->st_mtim.tv_sec;
	n->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
	n->nlink = 1;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Streams bytes [pos, end) of a file into the writer: its holes (SEEK_DATA,
 * SEEK_HOLE) as holes, with no read, so a sparse terabyte costs what its
 * data costs.
 */
static int stream_fd(struct walk *wk, int fd, uint64_t pos, uint64_t end)
{
	int ret;

	while (pos < end) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		off_t hole;

		if (data < 0 && errno == ENXIO)
			data = (off_t)end; /* the rest is a hole */
		else if (data < 0)
			return fail_errno(wk, errno, "seek in");
		if ((uint64_t)data > end)
			data = (off_t)end;
		if ((uint64_t)data > pos) {
			ret = cairn_writer_file_hole(wk->w, (uint64_t)data - pos);
			if (ret)
				return ret;
			wk->done_bytes += (uint64_t)data - pos;
			pos = (uint64_t)data;
		}
		if (pos >= end)
			break;
		hole = lseek(fd, (off_t)pos, SEEK_HOLE);
		if (hole < 0)
			return fail_errno(wk, errno, "seek in");
		if ((uint64_t)hole > end)
			hole = (off_t)end;
		while (pos < (uint64_t)hole) {
			size_t want = (uint64_t)hole - pos < READ_BUF ? (size_t)((uint64_t)hole - pos)
								      : READ_BUF;
			ssize_t got = pread(fd, wk->buf, want, (off_t)pos);

			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return fail_errno(wk, errno, "read");
			if (got == 0)
				return cairn_err(-EAGAIN, "'%s/%s' changed during the import (it "
							  "shrank); nothing was published",
						 wk->src, path_show(wk));
			ret = cairn_writer_file_data(wk->w, wk->buf, (size_t)got);
			if (ret)
				return ret;
			pos += (uint64_t)got;
			wk->done_bytes += (uint64_t)got;
			progress(wk, false);
		}
	}
	return 0;
}

/* Streams a regular file's bytes into the writer. */
static int read_file(struct walk *wk, int fd, const struct stat *st, struct cairn_node_build *n)
{
	int ret;

	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	cairn_writer_file_begin(wk->w);
	ret = stream_fd(wk, fd, 0, (uint64_t)st->st_size);
	return ret ? ret : cairn_writer_file_end(wk->w, n);
}

/* Streams bytes [0, end) of stored content into the writer, its holes as holes. */
static int stream_content(struct walk *wk, struct cairn_reader *rd,
			  const struct cairn_content_view *cv, uint64_t end)
{
	int ret = 0;

	for (uint32_t i = 0; !ret && i < cv->count; i++) {
		struct cairn_extent e;
		uint64_t stop;

		cairn_content_extent(cv, i, &e);
		if (e.start >= end)
			break;
		stop = e.end < end ? e.end : end;
		if (e.hole) {
			ret = cairn_writer_file_hole(wk->w, stop - e.start);
			continue;
		}
		for (uint64_t pos = e.start; !ret && pos < stop;) {
			size_t want = stop - pos < READ_BUF ? (size_t)(stop - pos) : READ_BUF;
			ssize_t got = cairn_reader_pread(rd, cv, wk->buf, want, pos);

			if (got <= 0)
				return got < 0 ? (int)got : -EIO;
			ret = cairn_writer_file_data(wk->w, wk->buf, (size_t)got);
			pos += (uint64_t)got;
		}
	}
	return ret;
}

static int build_dir(struct walk *wk, int dirfd, const struct stat *dst, struct cairn_id *out);

/*
 * An upper object's xattrs as the container set them: cairn's markers
 * taken out (into m), escaped names restored, sorted again.
 */
static int upper_xattrs(struct cairn_xattr *xs, size_t *nx, struct upper_marks *m)
{
	size_t out = 0, esc = strlen(CFS_XATTR_ESCAPE), pre = strlen(CFS_XATTR_PREFIX);
	int ret;

	for (size_t i = 0; i < *nx; i++) {
		struct cairn_xattr *x = &xs[i];

		if (strncmp(x->name, CFS_XATTR_PREFIX, pre) != 0) {
			xs[out++] = *x;
			continue;
		}
		if (strncmp(x->name, CFS_XATTR_ESCAPE, esc) == 0) {
			/* offsets for now: names.data may still move */
			size_t at = m->names.len, rest = strlen(x->name + esc);

			ret = cairn_buf_append(&m->names, CFS_XATTR_PREFIX, pre);
			if (!ret)
				ret = cairn_buf_append(&m->names, x->name + esc, rest + 1);
			if (ret)
				return ret;
			xs[out] = *x;
			xs[out].name = (const char *)(uintptr_t)(at + 1);
			xs[out].name_len = pre + rest;
			out++;
			continue;
		}
		cfs_marks_parse(&m->m, x->name, x->value, x->value_len);
	}
	for (size_t i = 0; i < out; i++) {
		uintptr_t at = (uintptr_t)xs[i].name;

		/* restored names were marked by offset + 1 (never a real pointer that small) */
		if (at && at <= m->names.len)
			xs[i].name = (const char *)m->names.data + at - 1;
	}
	*nx = out;
	if (out)
		qsort(xs, out, sizeof(*xs), xattr_cmp);
	cfs_marks_finish(&m->m);
	return 0;
}

/*
 * A metacopy file's content: its origin's, taken over with no data read;
 * or, when the container appended or cut it, the origin's first lower_len
 * bytes followed by the file's own.
 */
static int origin_content(struct walk *wk, const struct cfs_marks *m, int fd,
			  const struct stat *st, struct cairn_node_build *n)
{
	struct cairn_txn *t;
	struct cairn_node_view v;
	int ret = cairn_txn_begin(wk->store, false, &t);

	if (ret)
		return ret;
	ret = cairn_node_get(t, &m->origin, 0, &v);
	if (!ret && v.type != CAIRN_NODE_REG)
		ret = -EUCLEAN;
	if (ret) {
		cairn_txn_abort(t);
		return cairn_err(ret, "'%s/%s' was copied up from a node the store no longer has "
				      "(was its image collected?)", wk->src, path_show(wk));
	}
	if (m->lower_len >= v.size && (uint64_t)st->st_size == v.size) {
		n->size = v.size;
		n->content_kind = v.content_kind;
		n->content = v.content;
	} else {
		uint64_t size = (uint64_t)st->st_size, lower = m->lower_len < v.size ? m->lower_len
										 : v.size;
		struct cairn_content_view cv;
		struct cairn_reader rd;

		if (lower > size)
			lower = size;
		ret = cairn_file_content(t, &v, 0, &cv);
		if (!ret)
			ret = cairn_reader_init(&rd, t);
		if (!ret) {
			/* the image's part by its extents, the file's own by SEEK_DATA */
			cairn_writer_file_begin(wk->w);
			ret = stream_content(wk, &rd, &cv, lower);
			if (!ret)
				ret = stream_fd(wk, fd, lower, size);
			if (!ret)
				ret = cairn_writer_file_end(wk->w, n);
			cairn_reader_release(&rd);
		}
	}
	cairn_txn_abort(t);
	return ret;
}

/*
 * A renamed directory of the image: its image part (the redirect node)
 * with the changes under it stacked on, as an opaque directory, since at
 * its new place nothing else of the image may show through.
 */
static int redirect_dir(struct walk *wk, const struct cairn_id *redirect, struct cairn_id *id)
{
	struct cairn_stack_result res;
	struct cairn_node_build n = { 0 };
	struct cairn_node_view v;
	struct cairn_dirent *ents = NULL;
	struct cairn_xattr *xs = NULL;
	struct cairn_txn *t;
	size_t off = 0;
	int ret = cairn_writer_flush(wk->w);

	if (!ret)
		ret = cairn_stack(wk->w, redirect, id, &res);
	if (!ret)
		ret = cairn_writer_flush(wk->w);
	if (ret)
		return ret;
	ret = cairn_txn_begin(wk->store, false, &t);
	if (ret)
		return ret;
	ret = cairn_node_get(t, &res.root, 0, &v);
	if (!ret) {
		ents = calloc(v.nentries ? v.nentries : 1, sizeof(*ents));
		xs = calloc(v.nxattr ? v.nxattr : 1, sizeof(*xs));
		if (!ents || !xs)
			ret = -ENOMEM;
	}
	for (uint32_t i = 0; !ret && i < v.nentries; i++)
		ret = cairn_dir_entry(&v, i, &ents[i]);
	for (uint32_t i = 0; !ret && i < v.nxattr; i++)
		ret = cairn_xattr_next(&v, &off, &xs[i]);
	if (!ret) {
		n.type = CAIRN_NODE_DIR;
		n.flags = CAIRN_NODE_OPAQUE;
		n.mode = v.mode;
		n.uid = v.uid;
		n.gid = v.gid;
		n.mtime_sec = v.mtime_sec;
		n.mtime_nsec = v.mtime_nsec;
		n.entries = ents;
		n.nentries = v.nentries;
		n.xattrs = xs;
		n.nxattr = v.nxattr;
		ret = cairn_writer_put_node(wk->w, &n, id);
	}
	cairn_txn_abort(t);
	free(ents);
	free(xs);
	return ret;
}

/* Builds the node of one directory entry. */
static int build_entry(struct walk *wk, int dirfd, const char *name, struct cairn_dirent *e)
{
	struct cairn_node_build n = { 0 };
	struct cairn_xattr *xs = NULL;
	size_t nx = 0;
	struct cairn_buf xstore = { 0 };
	struct upper_marks marks = { 0 };
	struct stat st, st2;
	cleanup_fd int fd = -1;
	char *target = wk->target;
	char procpath[64];
	int ret;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? cairn_err(-EAGAIN, "'%s/%s' vanished during the import; "
							    "nothing was published",
						   wk->src, path_show(wk))
				       : fail_errno(wk, errno, "stat");
	wk->done_entries++;
	fill_common(&n, &st);

	if (wk->upper && cfs_is_whiteout(&st)) {
		n.type = CAIRN_NODE_WHITEOUT;
		n.mode = 0;
		n.uid = n.gid = 0;
		n.mtime_sec = 0;
		n.mtime_nsec = 0;
		e->type = n.type;
		return cairn_writer_put_node(wk->w, &n, &e->id);
	}
	if (S_ISDIR(st.st_mode)) {
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return fail_errno(wk, errno, "open directory");
		ret = build_dir(wk, fd, &st, &e->id);
		e->type = CAIRN_NODE_DIR;
		return ret;
	}

	if (S_ISREG(st.st_mode)) {
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
		if (fd < 0 && errno == EPERM)
			fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? cairn_err(-EAGAIN, "'%s/%s' vanished during the "
								    "import; nothing was published",
							   wk->src, path_show(wk))
					       : fail_errno(wk, errno, "open");
		if (fstat(fd, &st2) < 0)
			return fail_errno(wk, errno, "stat");
		if (!same_file(&st, &st2))
			goto changed;
		n.type = CAIRN_NODE_REG;
		ret = read_xattrs(wk, fd, NULL, &xs, &nx, &xstore);
		if (!ret && wk->upper)
			ret = upper_xattrs(xs, &nx, &marks);
		if (ret)
			goto out;
		if (marks.m.dev00 && st.st_size == 0) {
			/* the daemon's escaped form of an image's char device 0/0 (upper.h) */
			n.type = CAIRN_NODE_CHR;
			n.major = n.minor = 0;
		} else if (marks.m.metacopy) {
			ret = origin_content(wk, &marks.m, fd, &st, &n);
		} else {
			ret = read_file(wk, fd, &st, &n);
		}
		if (ret)
			goto out;
		if (fstat(fd, &st2) < 0) {
			ret = fail_errno(wk, errno, "stat");
			goto out;
		}
		if (!same_file(&st, &st2)) {
			ret = cairn_err(-EAGAIN, "'%s/%s' changed during the import; nothing was "
						 "published", wk->src, path_show(wk));
			goto out;
		}
	} else {
		snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d/", dirfd);
		if (S_ISLNK(st.st_mode)) {
			ssize_t len = readlinkat(dirfd, name, target, CAIRN_SYMLINK_MAX + 2);

			if (len < 0)
				return fail_errno(wk, errno, "read link");
			if (len == 0 || (size_t)len > CAIRN_SYMLINK_MAX)
				return cairn_err(-ENAMETOOLONG, "link target of '%s/%s' is too long",
						 wk->src, path_show(wk));
			n.type = CAIRN_NODE_LNK;
			n.target = target;
			n.target_len = (size_t)len;
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			n.type = S_ISCHR(st.st_mode) ? CAIRN_NODE_CHR : CAIRN_NODE_BLK;
			n.major = major(st.st_rdev);
			n.minor = minor(st.st_rdev);
		} else if (S_ISFIFO(st.st_mode)) {
			n.type = CAIRN_NODE_FIFO;
		} else if (S_ISSOCK(st.st_mode)) {
			n.type = CAIRN_NODE_SOCK;
		} else {
			return cairn_err(-EINVAL, "'%s/%s' has an unknown file type", wk->src,
					 path_show(wk));
		}
		{
			cleanup_free char *p = NULL;

			if (asprintf(&p, "%s%s", procpath, name) < 0)
				return -ENOMEM;
			ret = read_xattrs(wk, -1, p, &xs, &nx, &xstore);
			if (!ret && wk->upper)
				ret = upper_xattrs(xs, &nx, &marks);
		}
	}
	if (ret)
		goto out;

	if (st.st_nlink > 1) {
		struct link_group *g = link_find(wk, st.st_dev, st.st_ino);

		if (!g) {
			ret = cairn_err(-EAGAIN, "'%s/%s' changed during the import (a new hard "
						 "link); nothing was published",
					wk->src, path_show(wk));
			goto out;
		}
		if (g->members > 1) {
			n.nlink = g->members;
			n.link_key = g->key;
		}
	}
	n.xattrs = xs;
	n.nxattr = nx;
	ret = cairn_writer_put_node(wk->w, &n, &e->id);
	e->type = n.type;
	if (!ret && n.type == CAIRN_NODE_REG) {
		/* a hard-link group's bytes count once */
		struct link_group *g = n.nlink > 1 ? link_find(wk, st.st_dev, st.st_ino) : NULL;

		if (!g || !g->counted)
			wk->logical_size += n.size;
		if (g)
			g->counted = true;
	}
out:
	free(xs); /* names and values live in xstore */
	cairn_buf_release(&xstore);
	cairn_buf_release(&marks.names);
	return ret;

changed:
	return cairn_err(-EAGAIN, "'%s/%s' changed during the import; nothing was published",
			 wk->src, path_show(wk));
}

static int build_dir(struct walk *wk, int dirfd, const struct stat *dst, struct cairn_id *out)
{
	struct cairn_node_build n = { 0 };
	struct cairn_dirent *ents = NULL;
	struct cairn_xattr *xs = NULL;
	struct cairn_buf xstore = { 0 };
	struct upper_marks marks = { 0 };
	char **names = NULL;
	size_t count = 0, nx = 0, old;
	int ret;

	ret = list_dir(dirfd, &names, &count);
	if (ret)
		return fail_errno(wk, -ret, "read directory");
	ents = calloc(count ? count : 1, sizeof(*ents));
	if (!ents) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		ret = path_push(wk, names[i], &old);
		if (ret)
			goto out;
		if (strlen(names[i]) > CAIRN_NAME_MAX) {
			ret = cairn_err(-ENAMETOOLONG, "name too long: '%s/%s'", wk->src,
					path_show(wk));
			goto out;
		}
		ents[i].name = names[i];
		ents[i].name_len = strlen(names[i]);
		ret = build_entry(wk, dirfd, names[i], &ents[i]);
		if (ret)
			goto out;
		path_pop(wk, old);
	}
	ret = read_xattrs(wk, dirfd, NULL, &xs, &nx, &xstore);
	if (!ret && wk->upper)
		ret = upper_xattrs(xs, &nx, &marks);
	if (ret)
		goto out;
	fill_common(&n, dst);
	n.type = CAIRN_NODE_DIR;
	n.flags = marks.m.opaque && !marks.m.has_redirect ? CAIRN_NODE_OPAQUE : 0;
	n.nlink = 0;
	n.xattrs = xs;
	n.nxattr = nx;
	n.entries = ents;
	n.nentries = count;
	ret = cairn_writer_put_node(wk->w, &n, out);
	if (!ret && marks.m.has_redirect)
		ret = redirect_dir(wk, &marks.m.redirect, out);
out:
	free(xs); /* names and values live in xstore */
	cairn_buf_release(&xstore);
	cairn_buf_release(&marks.names);
	free(ents);
	free_names(names, count);
	return ret;
}

static int import_tree(struct walk *wk_in, const char *store_dir, struct import_result *res);

int import_dir(struct cairn_writer *w, const char *src, const char *store_dir, bool show,
	       struct import_result *res)
{
	struct walk wk = { .w = w, .src = src, .progress = show };

	return import_tree(&wk, store_dir, res);
}

int import_upper(struct cairn_writer *w, struct cairn_store *s, const char *src, bool show,
		 struct import_result *res)
{
	struct walk wk = { .w = w, .src = src, .progress = show, .store = s, .upper = true };

	return import_tree(&wk, cairn_store_dir(s), res);
}

static int import_tree(struct walk *wk_in, const char *store_dir, struct import_result *res)
{
	struct walk wk = *wk_in;
	const char *src = wk.src;
	cleanup_fd int fd = -1;
	struct stat st, sst;
	int ret;

	fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		char ebuf[128];

		return cairn_err(-errno, "cannot open '%s': %s", src,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (stat(store_dir, &sst) == 0) {
		wk.store_dev = sst.st_dev;
		wk.store_ino = sst.st_ino;
		if (sst.st_dev == st.st_dev && sst.st_ino == st.st_ino)
			return cairn_err(-EINVAL, "the store is the tree being imported");
	}
	wk.buf = malloc(READ_BUF);
	wk.target = malloc(CAIRN_SYMLINK_MAX + 2);
	if (!wk.buf || !wk.target) {
		free(wk.buf);
		free(wk.target);
		return -ENOMEM;
	}
	wk.start_ns = cairn_now_ns();
	wk.total_entries = 1;
	ret = scan(&wk, fd);
	if (ret)
		goto out;
	if (wk.nlinks)
		qsort(wk.links, wk.nlinks, sizeof(*wk.links), link_cmp);
	wk.done_entries = 1;
	ret = build_dir(&wk, fd, &st, &res->root);
	if (ret)
		goto out;
	progress(&wk, true);
	res->entries = wk.done_entries;
	res->logical_size = wk.logical_size;
out:
	if (ret && wk.progress)
		fputc('\n', stderr);
	free(wk.buf);
	free(wk.target);
	free(wk.links);
	cairn_buf_release(&wk.path);
	return ret;
}
