/* SPDX-License-Identifier: MIT */
/*
 * rw.c - the handlers of a writable mount: the image below, an upper
 * directory on the host on top (upper.h describes its format).
 *
 * An inode is what the merged view shows at a name: an upper object (held
 * open as an O_PATH fd), an image node, or a directory with both. Every
 * upper operation starts from such an fd and names one entry of it with
 * the *at() calls (never following a symlink in that last name) or goes
 * through /proc/self/fd/N, which reaches exactly the object the fd holds;
 * no path string the container could have bent with a symlink is ever
 * resolved. Files are created as the calling process's uid and gid.
 *
 * Copy-up is metadata first: a sparse file of the right size with the
 * image node's owner, mode, times and xattrs, marked metacopy, made in
 * work/, fsync'd and renamed into place (so a half-made copy is never
 * visible, also after a crash). Its data stays the image's until a write
 * needs it: then the bytes are written into the file in place, fsync'd,
 * and only then the metacopy mark is removed, so a crash in between still
 * shows the image's bytes. chmod, chown, utimens and xattrs therefore copy
 * no data. A hard-link group of the image is copied up whole, its members
 * linked, so a write through one name shows through the others.
 *
 * Identity: an inode is found again by a key, the upper object's st_ino
 * once it has one, else its image identity (as on a read-only mount); its
 * number is the key of when it was made (probed past collisions) and stays
 * while the kernel holds it, copy-up included.
 *
 * Locks: switch_lock (read, via cfs_thread_begin) then ns_lock, held by
 * every handler that reads or changes the namespace or rw state. Data
 * reads and writes on upper files use the inode's data fd without it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs-internal.h"

#define XNAME_BUF (XATTR_NAME_MAX + 1 + 16)

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6, one number on every architecture; Debian 12's headers predate it */
#endif

/* ---- key map ---- */

static size_t kbucket(const struct cfs *fs, uint64_t key)
{
	return (size_t)(key * 0x9e3779b97f4a7c15ull >> 17) & (fs->nkbuckets - 1);
}

static struct cfs_inode *key_find_locked(struct cfs *fs, uint64_t key)
{
	for (struct cfs_inode *in = fs->kbuckets[kbucket(fs, key)]; in; in = in->rw->knext)
		if (in->rw->key == key)
			return in;
	return NULL;
}

static void key_del_locked(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_inode **pp;

	if (!in->rw->key)
		return;
	for (pp = &fs->kbuckets[kbucket(fs, in->rw->key)]; *pp; pp = &(*pp)->rw->knext) {
		if (*pp == in) {
			*pp = in->rw->knext;
			break;
		}
	}
	in->rw->key = 0;
	in->rw->knext = NULL;
}

static void key_add_locked(struct cfs *fs, struct cfs_inode *in, uint64_t key)
{
	size_t k;

	key_del_locked(fs, in);
	if (!key)
		return;
	k = kbucket(fs, key);
	in->rw->key = key;
	in->rw->knext = fs->kbuckets[k];
	fs->kbuckets[k] = in;
}

static void rekey(struct cfs *fs, struct cfs_inode *in, uint64_t key)
{
	pthread_mutex_lock(&fs->itable_lock);
	key_add_locked(fs, in, key);
	pthread_mutex_unlock(&fs->itable_lock);
}

static void unkey(struct cfs *fs, struct cfs_inode *in)
{
	rekey(fs, in, 0);
}

static uint64_t nonzero(uint64_t k)
{
	return k > FUSE_ROOT_ID ? k : k + 2;
}

static uint64_t upper_key(uint64_t st_ino)
{
	uint8_t b[9] = { 'U' };

	memcpy(b + 1, &st_ino, 8);
	return nonzero(XXH3_64bits(b, sizeof(b)));
}

/* An image entry's key, as a read-only mount numbers it. */
static uint64_t lower_key(uint64_t parent, const char *name, size_t len,
			  const struct cairn_id *node, uint8_t type, uint32_t nlink)
{
	struct cairn_node_view v = { .type = type, .nlink = nlink };

	return cfs_inode_number(parent, name, len, node, &v);
}

struct cfs_rw *cfs_rw_root(struct cfs *fs)
{
	struct cfs_rw *rw = calloc(1, sizeof(*rw));
	struct stat st;

	if (!rw)
		return NULL;
	rw->ufd = fcntl(fs->upper->tree_fd, F_DUPFD_CLOEXEC, 0);
	rw->dfd = -1;
	rw->lower = CFS_LOWER_PATH;
	if (rw->ufd < 0 || fstat(rw->ufd, &st) < 0) {
		free(rw);
		return NULL;
	}
	rw->upper_ino = st.st_ino;
	return rw;
}

void cfs_rw_inode_free(struct cfs *fs, struct cfs_inode *in)
{
	struct cfs_rw *rw = in->rw;

	key_del_locked(fs, in);
	if (rw->ufd >= 0)
		close(rw->ufd);
	if (rw->dfd >= 0)
		close(rw->dfd);
	free(rw);
	in->rw = NULL;
}

/* ---- requests ---- */

struct rq {
	struct cfs *fs;
	struct cfs_thread *t;
};

static void refresh_upper(struct rq *r, struct cfs_inode *p, unsigned depth);

static int rq_begin(fuse_req_t req, struct rq *r)
{
	int ret;

	r->fs = cfs_of(req);
	r->t = cfs_thread_begin(r->fs, &ret);
	if (!r->t)
		return ret;
	pthread_mutex_lock(&r->fs->ns_lock);
	return 0;
}

static void rq_end(struct rq *r)
{
	pthread_mutex_unlock(&r->fs->ns_lock);
	cfs_thread_end(r->t);
}

static struct cfs_inode *inode_of(struct cfs *fs, fuse_ino_t ino)
{
	return cfs_inode_find(fs, ino);
}

static int node_get(struct rq *r, const struct cairn_id *id, struct cairn_node_view *v)
{
	int ret = cairn_node_get(r->t->txn, id, 0, v);

	if (ret) {
		cfs_log(r->fs, LOG_ERR, "%s", cairn_errmsg());
		atomic_fetch_add(&r->fs->eio, 1);
		return -EIO;
	}
	return 0;
}

/* The image entry named name below directory p, if the image shows through p. */
static int lower_at(struct rq *r, struct cfs_inode *p, const char *name, size_t len,
		    struct cairn_dirent *e)
{
	struct cairn_node_view pv;
	int ret;

	if (p->rw->lower == CFS_LOWER_NONE || p->type != CAIRN_NODE_DIR)
		return -ENOENT;
	ret = node_get(r, &p->node, &pv);
	if (ret)
		return ret;
	if (pv.type != CAIRN_NODE_DIR)
		return -ENOENT;
	ret = cairn_dir_lookup(&pv, name, len, e, NULL);
	return ret == -EUCLEAN ? -EIO : ret;
}

/* Reads cairn's markers of the upper object fd (an O_PATH fd). */
struct marks {
	bool none; /* no xattrs but markers */
	bool opaque, metacopy, has_origin, has_redirect;
	uint64_t lower_len; /* with metacopy: UINT64_MAX for "y" (all of the origin) */
	struct cairn_id origin, redirect;
};

static int read_marks(int fd, struct marks *m)
{
	char list[4096], path[32], val[64];
	ssize_t n = listxattr(cfs_fdpath(fd, path), list, sizeof(list));

	memset(m, 0, sizeof(*m));
	if (n < 0) {
		if (errno == ENOTSUP) {
			m->none = true;
			return 0;
		}
		if (errno != ERANGE)
			return -errno;
		n = sizeof(list); /* more than fits: read each marker below */
	} else {
		bool other = false;

		for (ssize_t off = 0; off < n; off += (ssize_t)strlen(list + off) + 1)
			if (strncmp(list + off, CFS_XATTR_PREFIX, strlen(CFS_XATTR_PREFIX)) != 0 ||
			    strncmp(list + off, CFS_XATTR_ESCAPE, strlen(CFS_XATTR_ESCAPE)) == 0)
				other = true;
		m->none = !other;
	}
	if (!memmem(list, (size_t)n, CFS_XATTR_PREFIX, strlen(CFS_XATTR_PREFIX)))
		return 0;
	if (getxattr(path, CFS_XATTR_OPAQUE, val, sizeof(val)) > 0)
		m->opaque = true;
	n = getxattr(path, CFS_XATTR_METACOPY, val, sizeof(val) - 1);
	if (n > 0) {
		char *end;

		val[n] = '\0';
		m->metacopy = true;
		m->lower_len = UINT64_MAX;
		if (strcmp(val, "y") != 0) {
			errno = 0;
			m->lower_len = strtoull(val, &end, 10);
			m->metacopy = !errno && *end == '\0' && val[0] >= '0' && val[0] <= '9';
		}
	}
	n = getxattr(path, CFS_XATTR_ORIGIN, val, sizeof(val) - 1);
	if (n == CAIRN_ID_HEX_LEN) {
		val[n] = '\0';
		m->has_origin = cairn_id_parse_prefix(val, &m->origin) == CAIRN_ID_HEX_LEN;
	}
	n = getxattr(path, CFS_XATTR_REDIRECT, val, sizeof(val) - 1);
	if (n == CAIRN_ID_HEX_LEN) {
		val[n] = '\0';
		m->has_redirect = cairn_id_parse_prefix(val, &m->redirect) == CAIRN_ID_HEX_LEN;
	}
	m->metacopy &= m->has_origin;
	return 0;
}

/* What the merged view shows at a name. */
struct entry {
	int ufd;               /* O_PATH fd of the upper object, or -1 */
	struct stat st;        /* the upper object's */
	bool whiteout;         /* the upper deletes the name */
	bool below;            /* the image has an entry of this name under the parent */
	struct cairn_dirent lower; /* that entry */
	struct cairn_id node;  /* the node served below the upper (or alone) */
	uint8_t kind;          /* enum cfs_lower */
	uint8_t type;          /* CAIRN_NODE_* */
	bool metacopy, opaque, no_xattrs;
	uint64_t lower_len;    /* with metacopy */
	struct cairn_node_view v; /* node's view when kind != NONE */
};

static void entry_release(struct entry *e)
{
	if (e->ufd >= 0)
		close(e->ufd);
	e->ufd = -1;
}

static uint8_t st_type(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return CAIRN_NODE_REG;
	case S_IFDIR: return CAIRN_NODE_DIR;
	case S_IFLNK: return CAIRN_NODE_LNK;
	case S_IFCHR: return CAIRN_NODE_CHR;
	case S_IFBLK: return CAIRN_NODE_BLK;
	case S_IFIFO: return CAIRN_NODE_FIFO;
	default: return CAIRN_NODE_SOCK;
	}
}

/*
 * Resolves name in directory p. 0 with e filled (e->ufd to be released),
 * -ENOENT when nothing shows there, or another -errno.
 */
static int resolve(struct rq *r, struct cfs_inode *p, const char *name, struct entry *e)
{
	size_t len = strlen(name);
	int ret;

	memset(e, 0, sizeof(*e));
	e->ufd = -1;
	if (len > CAIRN_NAME_MAX)
		return -ENAMETOOLONG;
	if (p->type != CAIRN_NODE_DIR)
		return -ENOTDIR;
	refresh_upper(r, p, 0);
	ret = lower_at(r, p, name, len, &e->lower);
	if (ret && ret != -ENOENT)
		return ret;
	e->below = ret == 0;
	if (p->rw->ufd >= 0) {
		e->ufd = openat(p->rw->ufd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (e->ufd < 0 && errno != ENOENT)
			return -errno;
	}
	if (e->ufd >= 0) {
		struct marks m;

		ret = fstat(e->ufd, &e->st) < 0 ? -errno : read_marks(e->ufd, &m);
		if (ret) {
			entry_release(e);
			return ret;
		}
		if (cfs_is_whiteout(&e->st)) {
			e->whiteout = true;
			entry_release(e);
			return -ENOENT;
		}
		e->type = st_type(e->st.st_mode);
		e->no_xattrs = m.none;
		if (e->type == CAIRN_NODE_DIR) {
			e->opaque = m.opaque;
			if (m.has_redirect) {
				e->kind = CFS_LOWER_PINNED;
				e->node = m.redirect;
			} else if (!m.opaque && e->below && e->lower.type == CAIRN_NODE_DIR) {
				e->kind = CFS_LOWER_PATH;
				e->node = e->lower.id;
			}
		} else if (e->type == CAIRN_NODE_REG && m.has_origin) {
			e->kind = CFS_LOWER_PINNED;
			e->node = m.origin;
			e->metacopy = m.metacopy;
			e->lower_len = m.lower_len;
		}
	} else if (e->below) {
		e->kind = CFS_LOWER_PATH;
		e->node = e->lower.id;
		e->type = e->lower.type;
	} else {
		return -ENOENT;
	}
	if (e->kind != CFS_LOWER_NONE) {
		ret = node_get(r, &e->node, &e->v);
		if (ret) {
			entry_release(e);
			return ret;
		}
		if (e->ufd >= 0 && e->v.type != e->type) {
			e->kind = CFS_LOWER_NONE; /* a marker that does not fit: ignore it */
			e->metacopy = false;
		}
		if (e->metacopy && e->lower_len > e->v.size)
			e->lower_len = e->v.size;
	}
	return 0;
}

/* The key e has for an inode in p named name. */
static uint64_t entry_key(struct cfs_inode *p, const char *name, const struct entry *e)
{
	if (e->ufd >= 0)
		return upper_key(e->st.st_ino);
	return lower_key(p->ino, name, strlen(name), &e->node, e->type, e->v.nlink);
}

/*
 * Finds or makes the inode for e (at name in p) and takes a kernel
 * reference. e->ufd is taken over or closed.
 */
static struct cfs_inode *entry_ref(struct rq *r, struct cfs_inode *p, const char *name,
				   struct entry *e)
{
	struct cfs *fs = r->fs;
	uint64_t key = entry_key(p, name, e);
	struct cfs_inode *in;

	pthread_mutex_lock(&fs->itable_lock);
	in = key_find_locked(fs, key);
	if (!in && e->ufd >= 0 && e->below && e->kind != CFS_LOWER_NONE) {
		/* made when it was only the image's and copied up since (by another name) */
		uint64_t lk = lower_key(p->ino, name, strlen(name), &e->lower.id, e->lower.type,
					e->kind == CFS_LOWER_PATH ? e->v.nlink : 1);
		struct cfs_inode *old = key_find_locked(fs, lk);

		if (old && old->rw->ufd < 0 && old->type == e->type) {
			in = old;
			old->rw->ufd = e->ufd;
			e->ufd = -1;
			old->rw->upper_ino = e->st.st_ino;
			old->rw->metacopy = e->metacopy;
			old->rw->lower_len = e->lower_len;
			old->rw->no_xattrs = e->no_xattrs;
			key_add_locked(fs, old, key);
		}
	}
	if (in) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->itable_lock);
		entry_release(e);
		return in;
	}
	pthread_mutex_unlock(&fs->itable_lock);

	in = calloc(1, sizeof(*in));
	if (in)
		in->rw = calloc(1, sizeof(*in->rw));
	if (!in || !in->rw || !(in->name = strdup(name))) {
		if (in)
			free(in->rw);
		free(in);
		entry_release(e);
		return NULL;
	}
	in->parent = p->ino;
	in->name_hash = XXH3_64bits(name, strlen(name));
	in->type = e->type;
	in->node = e->node;
	in->rw->ufd = e->ufd;
	in->rw->dfd = -1;
	in->rw->lower = e->kind;
	in->rw->metacopy = e->metacopy;
	in->rw->lower_len = e->lower_len;
	in->rw->opaque = e->opaque;
	in->rw->no_xattrs = e->ufd >= 0 ? e->no_xattrs : e->v.nxattr == 0;
	in->rw->upper_ino = e->ufd >= 0 ? e->st.st_ino : 0;
	e->ufd = -1;
	if (e->kind != CFS_LOWER_NONE)
		cfs_inode_derive(r->t, in, &e->v);
	pthread_mutex_lock(&fs->itable_lock);
	cfs_inode_insert_locked(fs, in, key);
	in->nlookup = 1;
	key_add_locked(fs, in, key);
	pthread_mutex_unlock(&fs->itable_lock);
	return in;
}

/* ---- attributes ---- */

/* Subdirectories of a merged directory, for its link count. */
static nlink_t merged_nlink(struct rq *r, struct cfs_inode *in, const struct stat *ust)
{
	struct cairn_node_view v;
	nlink_t n = ust->st_nlink;

	if (in->rw->lower == CFS_LOWER_NONE || node_get(r, &in->node, &v))
		return n;
	for (uint32_t i = 0; i < v.nentries; i++) {
		struct cairn_dirent d;
		char name[CAIRN_NAME_MAX + 1];
		struct stat st;

		if (cairn_dir_entry(&v, i, &d) || d.type != CAIRN_NODE_DIR)
			continue;
		memcpy(name, d.name, d.name_len);
		name[d.name_len] = '\0';
		if (fstatat(in->rw->ufd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			n++;
	}
	return n;
}

static int inode_stat(struct rq *r, struct cfs_inode *in, struct stat *st)
{
	struct cairn_node_view v;
	int ret;

	if (in->rw->ufd >= 0) {
		if (fstat(in->rw->ufd, st) < 0)
			return -errno;
		st->st_ino = in->ino;
		st->st_dev = 0;
		if (in->type == CAIRN_NODE_DIR)
			st->st_nlink = merged_nlink(r, in, st);
		else if (in->rw->metacopy)
			st->st_blocks = (blkcnt_t)in->blocks;
		return 0;
	}
	ret = node_get(r, &in->node, &v);
	if (ret)
		return ret;
	cfs_fill_stat(in, &v, st);
	if (in->rw->unlinked)
		st->st_nlink = 0;
	return 0;
}

static void reply_entry(fuse_req_t req, struct rq *r, struct cfs_inode *in)
{
	struct fuse_entry_param e = { 0 };
	int ret = inode_stat(r, in, &e.attr);

	if (ret) {
		cfs_inode_forget(r->fs, in->ino, 1);
		rq_end(r);
		fuse_reply_err(req, -ret);
		return;
	}
	e.ino = in->ino;
	e.attr_timeout = r->fs->timeout;
	e.entry_timeout = r->fs->timeout;
	rq_end(r);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		cfs_inode_forget(r->fs, in->ino, 1);
}

static void rw_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rq r;
	struct cfs_inode *p, *in;
	struct entry e;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = inode_of(r.fs, parent);
	ret = p ? resolve(&r, p, name, &e) : -ESTALE;
	if (ret == -ENOENT) {
		/* no negative caching: the upper changes under names the kernel asked for */
		struct fuse_entry_param ne = { 0 };

		rq_end(&r);
		fuse_reply_entry(req, &ne);
		return;
	}
	if (ret) {
		rq_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	in = entry_ref(&r, p, name, &e);
	if (!in) {
		rq_end(&r);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_entry(req, &r, in);
}

static void rw_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rq r;
	struct cfs_inode *in;
	struct stat st;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	ret = in ? inode_stat(&r, in, &st) : -ESTALE;
	rq_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, r.fs->timeout);
}

/* ---- copy-up ---- */

/* Copies the image node's xattrs onto the upper object at path. */
static int copy_xattrs_fd(const struct cairn_node_view *v, int fd, const char *path);

static int copy_xattrs(const struct cairn_node_view *v, const char *path)
{
	return copy_xattrs_fd(v, -1, path);
}

/* The node's xattrs onto the upper object: by fd when fd >= 0, else by path (not following). */
static int copy_xattrs_fd(const struct cairn_node_view *v, int fd, const char *path)
{
	struct cairn_xattr x;
	size_t off = 0;
	int ret;

	while ((ret = cairn_xattr_next(v, &off, &x)) == 0) {
		char name[XATTR_NAME_MAX + 1], buf[XNAME_BUF];
		const char *un;

		if (x.name_len > XATTR_NAME_MAX)
			return -EIO;
		memcpy(name, x.name, x.name_len);
		name[x.name_len] = '\0';
		un = cfs_xattr_to_upper(name, buf, sizeof(buf));
		if (!un)
			return -ENAMETOOLONG;
		if ((fd >= 0 ? fsetxattr(fd, un, x.value, x.value_len, 0)
			     : lsetxattr(path, un, x.value, x.value_len, 0)) < 0)
			return -errno;
	}
	return ret == -ENOENT ? 0 : -EIO;
}

/*
 * Makes, in work/ under tmp, an upper copy of node v's metadata (a
 * directory, a sparse metacopy file, a symlink, a device...), with its
 * owner, mode, xattrs and times. Returns an O_PATH fd to it, or -errno.
 */
static int make_copy(struct rq *r, const struct cairn_id *node, const struct cairn_node_view *v,
		     const char *tmp)
{
	struct cfs_upper *u = r->fs->upper;
	char path[64], xpath[80];
	struct timespec ts[2];
	int fd = -1, pfd, ret = 0;

	snprintf(xpath, sizeof(xpath), "/proc/self/fd/%d/%s", u->work_fd, tmp);
	switch (v->type) {
	case CAIRN_NODE_DIR:
		if (mkdirat(u->work_fd, tmp, 0700) < 0)
			return -errno;
		break;
	case CAIRN_NODE_REG:
		fd = openat(u->work_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		if (ftruncate(fd, (off_t)v->size) < 0)
			ret = -errno;
		break;
	case CAIRN_NODE_LNK: {
		char target[CAIRN_SYMLINK_MAX + 1];

		memcpy(target, v->target, v->target_len);
		target[v->target_len] = '\0';
		if (symlinkat(target, u->work_fd, tmp) < 0)
			return -errno;
		break;
	}
	default:
		if (mknodat(u->work_fd, tmp, cairn_node_st_mode(v),
			    makedev(v->major, v->minor)) < 0)
			return -errno;
		break;
	}
	if (!ret && v->type == CAIRN_NODE_REG) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(node, hex);
		if (lsetxattr(xpath, CFS_XATTR_ORIGIN, hex, CAIRN_ID_HEX_LEN, 0) < 0 ||
		    lsetxattr(xpath, CFS_XATTR_METACOPY, "y", 1, 0) < 0)
			ret = -errno;
	}
	/* owner before mode (a chown clears set-id bits), xattrs after owner (it clears caps) */
	if (!ret && fchownat(u->work_fd, tmp, v->uid, v->gid, AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	if (!ret)
		ret = copy_xattrs(v, xpath);
	if (!ret && v->type != CAIRN_NODE_LNK &&
	    fchmodat(u->work_fd, tmp, cairn_node_st_mode(v) & 07777, 0) < 0)
		ret = -errno;
	ts[0].tv_sec = ts[1].tv_sec = v->mtime_sec;
	ts[0].tv_nsec = ts[1].tv_nsec = v->mtime_nsec;
	if (!ret && utimensat(u->work_fd, tmp, ts, AT_SYMLINK_NOFOLLOW) < 0)
		ret = -errno;
	/*
	 * No fsync: the copy holds no data yet (a metacopy file reads the
	 * image's), and the journal of ext4 or xfs commits these changes no
	 * later than the rename that shows them. Data is fsync'd before its
	 * metacopy mark goes (copy_up_data).
	 */
	if (fd >= 0)
		close(fd);
	if (!ret) {
		pfd = openat(u->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0)
			ret = -errno;
	}
	if (ret) {
		cfs_remove_tree(u->work_fd, tmp);
		return ret;
	}
	(void)path;
	return pfd;
}

/*
 * Copies the image entry node up to name in the upper directory dirfd;
 * an upper object already there (made since, by another name of a hard
 * link group) is adopted. Returns an O_PATH fd to it, or -errno.
 */
/* A copy-up is no change of its directory: its times are put back. */
static void keep_times(int dirfd, const struct stat *before)
{
	struct timespec ts[2] = { before->st_atim, before->st_mtim };

	utimensat(dirfd, "", ts, AT_EMPTY_PATH);
}

/*
 * A regular file's metacopy made as an O_TMPFILE in its own upper
 * directory and linked in once complete: nothing is visible before, and
 * a crash leaves nothing behind. Its inode is allocated beside its
 * directory's, not all in work/. Returns the open file (it serves as the
 * upper object's fd), -EEXIST when the name is taken, -EOPNOTSUPP where
 * the filesystem has no O_TMPFILE, or another -errno.
 */
static int copy_up_tmpfile(int dirfd, const char *name, const struct cairn_id *node,
			   const struct cairn_node_view *v)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct timespec ts[2];
	struct stat before;
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), ret = 0;

	if (fd < 0)
		return errno == EISDIR || errno == EINVAL ? -EOPNOTSUPP : -errno;
	cairn_id_hex(node, hex);
	ts[0].tv_sec = ts[1].tv_sec = v->mtime_sec;
	ts[0].tv_nsec = ts[1].tv_nsec = v->mtime_nsec;
	if ((v->size && ftruncate(fd, (off_t)v->size) < 0) ||
	    fsetxattr(fd, CFS_XATTR_ORIGIN, hex, CAIRN_ID_HEX_LEN, 0) < 0 ||
	    fsetxattr(fd, CFS_XATTR_METACOPY, "y", 1, 0) < 0 ||
	    fchown(fd, v->uid, v->gid) < 0) /* owner first: a chown clears set-id bits and caps */
		ret = -errno;
	if (!ret)
		ret = copy_xattrs_fd(v, fd, NULL);
	if (!ret && (fchmod(fd, cairn_node_st_mode(v) & 07777) < 0 || futimens(fd, ts) < 0 ||
		     fstat(dirfd, &before) < 0 || linkat(fd, "", dirfd, name, AT_EMPTY_PATH) < 0))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	keep_times(dirfd, &before);
	return fd;
}

static int copy_up_at(struct rq *r, int dirfd, const char *name, const struct cairn_id *node,
		      const struct cairn_node_view *v)
{
	struct stat before;
	char tmp[32];
	int fd;

	if (v->type == CAIRN_NODE_REG) {
		fd = copy_up_tmpfile(dirfd, name, node, v);
		if (fd == -EEXIST) {
			fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			return fd < 0 ? -errno : fd;
		}
		if (fd != -EOPNOTSUPP)
			return fd;
	}
	cfs_upper_tmpname(r->fs->upper, tmp);
	fd = make_copy(r, node, v, tmp);
	if (fd < 0)
		return fd;
	if (fstat(dirfd, &before) < 0 ||
	    renameat2(r->fs->upper->work_fd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
		int e = errno;

		close(fd);
		cfs_remove_tree(r->fs->upper->work_fd, tmp);
		if (e != EEXIST)
			return -e;
		fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	keep_times(dirfd, &before);
	return fd;
}

static int copy_up(struct rq *r, struct cfs_inode *in);

/* Sets in's upper fd (an O_PATH fd it takes over) and its key. */
static void adopt(struct rq *r, struct cfs_inode *in, int fd)
{
	struct stat st;

	in->rw->ufd = fd;
	if (fstat(fd, &st) == 0) {
		in->rw->upper_ino = st.st_ino;
		rekey(r->fs, in, upper_key(st.st_ino));
	}
}

/*
 * A hard-link group of the image copied up together: every path of the
 * image whose entry is this node, where the merged view still shows the
 * image's entry, becomes a link to one upper file. Directories on the way
 * to a member are copied up when a member is found below them, not before.
 */
struct gframe {
	int fd;               /* the directory in the upper, or -1 until made */
	long parent;          /* frame index, or -1 for the root */
	bool has_lower;       /* the image shows through it: id is that directory */
	struct cairn_id id;   /* the image directory */
	char name[CAIRN_NAME_MAX + 1];
};

struct group_walk {
	struct rq *r;
	const struct cairn_id *node;
	const struct cairn_node_view *v;
	struct gframe *f;
	size_t nf, cap;
	int first;      /* the upper file made for the first member, or -1 */
	bool made_dirs; /* directories inodes do not know of were copied up */
	int err;
};

/* The upper directory of frame k, made (with its parents) if need be. */
static int group_ensure(struct group_walk *g, long k)
{
	struct gframe *f = &g->f[k];
	struct cairn_node_view dv;
	int fd;

	if (f->fd >= 0)
		return f->fd;
	if (f->parent < 0)
		return -EIO;
	fd = group_ensure(g, f->parent);
	if (fd < 0)
		return fd;
	if (cairn_node_get(g->r->t->txn, &f->id, 0, &dv))
		return -EIO;
	fd = copy_up_at(g->r, g->f[f->parent].fd, f->name, &f->id, &dv);
	if (fd >= 0) {
		g->f[k].fd = fd;
		g->made_dirs = true;
	}
	return fd;
}

/* Pushes a frame for a directory below frame k; returns its index or -1. */
static long group_push(struct group_walk *g, long k, int fd, const struct cairn_id *lower,
		       const char *name)
{
	struct gframe *f;

	if (g->nf == g->cap) {
		size_t cap = g->cap * 2;
		struct gframe *nfr = realloc(g->f, cap * sizeof(*nfr));

		if (!nfr) {
			g->err = -ENOMEM;
			return -1;
		}
		g->f = nfr;
		g->cap = cap;
	}
	f = &g->f[g->nf];
	*f = (struct gframe){ .fd = fd, .parent = k, .has_lower = lower != NULL };
	if (lower)
		f->id = *lower;
	snprintf(f->name, sizeof(f->name), "%s", name);
	return (long)g->nf++;
}

static void group_dir(struct group_walk *g, long k, unsigned depth);

/* Visits the directory name of frame k: an upper one (cfd) and/or the image's lower. */
static void group_visit(struct group_walk *g, long k, int cfd, const struct cairn_id *lower,
			const char *name, unsigned depth)
{
	long c = group_push(g, k, cfd, lower, name);

	if (c < 0) {
		if (cfd >= 0)
			close(cfd);
		return;
	}
	group_dir(g, c, depth + 1);
	g->nf--;
	if (g->f[g->nf].fd >= 0)
		close(g->f[g->nf].fd);
}

/*
 * Walks the merged view below frame k: the image's directory (where it
 * shows through) and the upper one, so members inside renamed directories
 * (redirects) are found where they are now.
 */
static void group_dir(struct group_walk *g, long k, unsigned depth)
{
	struct cairn_node_view dv;
	bool has_lower = g->f[k].has_lower;

	if (depth > CAIRN_DEPTH_MAX || g->err)
		return;
	if (has_lower && cairn_node_get(g->r->t->txn, &g->f[k].id, 0, &dv))
		has_lower = false;
	for (uint32_t i = 0; has_lower && i < dv.nentries && !g->err; i++) {
		struct cairn_dirent d;
		char name[CAIRN_NAME_MAX + 1];
		struct stat st;
		int ufd = g->f[k].fd, fd;
		bool in_upper;

		if (cairn_dir_entry(&dv, i, &d))
			continue;
		if (d.type != CAIRN_NODE_DIR && !cairn_id_eq(&d.id, g->node))
			continue;
		memcpy(name, d.name, d.name_len);
		name[d.name_len] = '\0';
		in_upper = ufd >= 0 && fstatat(ufd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (d.type == CAIRN_NODE_DIR) {
			struct marks m;
			int cfd = -1;

			if (in_upper) {
				if (!S_ISDIR(st.st_mode))
					continue;
				cfd = openat(ufd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
				if (cfd < 0 || read_marks(cfd, &m)) {
					if (cfd >= 0)
						close(cfd);
					continue;
				}
				group_visit(g, k, cfd, m.has_redirect ? &m.redirect
							   : m.opaque ? NULL : &d.id, name, depth);
			} else {
				group_visit(g, k, -1, &d.id, name, depth);
			}
			continue;
		}
		if (in_upper)
			continue; /* changed, deleted or already linked */
		fd = group_ensure(g, k);
		if (fd < 0) {
			g->err = fd;
			return;
		}
		if (g->first < 0) {
			fd = copy_up_at(g->r, fd, name, g->node, g->v);
			if (fd < 0)
				g->err = fd;
			else
				g->first = fd;
		} else {
			struct stat before;
			bool kept = fstat(fd, &before) == 0;

			if (linkat(g->first, "", fd, name, AT_EMPTY_PATH) < 0 && errno != EEXIST)
				g->err = -errno;
			else if (kept)
				keep_times(fd, &before);
		}
	}
	if (g->f[k].fd >= 0 && !g->err) {
		/* directories only the upper has: made there, or renamed there */
		int dfd = openat(g->f[k].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;

		if (!dir) {
			if (dfd >= 0)
				close(dfd);
			return;
		}
		for (struct dirent *de; !g->err && (de = readdir(dir));) {
			struct cairn_dirent d;
			struct marks m;
			int cfd;

			if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			if (has_lower &&
			    cairn_dir_lookup(&dv, de->d_name, strlen(de->d_name), &d, NULL) == 0 &&
			    d.type == CAIRN_NODE_DIR)
				continue; /* visited above (an image file it replaced was not) */
			cfd = openat(dirfd(dir), de->d_name, O_PATH | O_NOFOLLOW | O_DIRECTORY |
								O_CLOEXEC);
			if (cfd < 0)
				continue;
			if (read_marks(cfd, &m)) {
				close(cfd);
				continue;
			}
			group_visit(g, k, cfd, m.has_redirect ? &m.redirect : NULL, de->d_name, depth);
		}
		closedir(dir);
	}
}

static int copy_up_group(struct rq *r, struct cfs_inode *in, const struct cairn_node_view *v)
{
	struct cfs_inode *root = inode_of(r->fs, FUSE_ROOT_ID);
	struct group_walk g = { .r = r, .node = &in->node, .v = v, .first = -1 };

	/* a group is found by its node id: one walk of the image per group, once */
	if (!root)
		return -ESTALE;
	g.f = calloc(32, sizeof(*g.f));
	if (!g.f)
		return -ENOMEM;
	g.cap = 32;
	g.f[0] = (struct gframe){ .fd = fcntl(root->rw->ufd, F_DUPFD_CLOEXEC, 0), .parent = -1,
				  .has_lower = true, .id = r->fs->root };
	g.nf = 1;
	if (g.f[0].fd < 0)
		g.err = -errno;
	else
		group_dir(&g, 0, 0);
	if (g.f[0].fd >= 0)
		close(g.f[0].fd);
	free(g.f);
	if (g.made_dirs)
		r->fs->upper_gen++; /* inodes of those directories find them again */
	if (g.err) {
		if (g.first >= 0)
			close(g.first);
		return g.err;
	}
	if (g.first < 0)
		return -ENOENT; /* no member is visible any more */
	adopt(r, in, g.first);
	in->rw->lower = CFS_LOWER_PINNED;
	in->rw->lower_len = v->size;
	in->rw->metacopy = v->type == CAIRN_NODE_REG;
	return 0;
}

/*
 * A directory inode made when the directory was only the image's, whose
 * upper copy a group copy-up made since: found by its parent's.
 */
static void refresh_upper(struct rq *r, struct cfs_inode *p, unsigned depth)
{
	struct cfs_inode *pp;
	int fd;

	if (p->rw->ufd >= 0 || p->rw->seen_gen == r->fs->upper_gen || p->type != CAIRN_NODE_DIR ||
	    p->rw->unlinked || p->ino == FUSE_ROOT_ID || depth > CAIRN_DEPTH_MAX)
		return;
	p->rw->seen_gen = r->fs->upper_gen;
	pp = inode_of(r->fs, p->parent);
	if (!pp)
		return;
	refresh_upper(r, pp, depth + 1);
	if (pp->rw->ufd < 0)
		return;
	fd = openat(pp->rw->ufd, p->name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		adopt(r, p, fd);
}

/* Gives in an upper object (metadata only for a file). */
static int copy_up(struct rq *r, struct cfs_inode *in)
{
	struct cairn_node_view v;
	struct cfs_inode *p;
	int ret, fd;

	refresh_upper(r, in, 0);
	if (in->rw->ufd >= 0)
		return 0;
	if (in->rw->lower == CFS_LOWER_NONE)
		return -EIO; /* neither upper nor image: cannot be */
	ret = node_get(r, &in->node, &v);
	if (ret)
		return ret;
	if (in->rw->unlinked) {
		/* open but nameless: an anonymous copy in work/ */
		char tmp[32];

		if (v.type != CAIRN_NODE_REG)
			return -ENOENT;
		cfs_upper_tmpname(r->fs->upper, tmp);
		fd = make_copy(r, &in->node, &v, tmp);
		if (fd < 0)
			return fd;
		unlinkat(r->fs->upper->work_fd, tmp, 0);
		in->rw->ufd = fd;
		in->rw->lower = CFS_LOWER_PINNED;
		in->rw->lower_len = v.size;
		in->rw->metacopy = true;
		return 0;
	}
	if (v.type != CAIRN_NODE_DIR && v.nlink > 1)
		return copy_up_group(r, in, &v);
	p = inode_of(r->fs, in->parent);
	if (!p)
		return -ESTALE;
	ret = copy_up(r, p);
	if (ret)
		return ret;
	fd = copy_up_at(r, p->rw->ufd, in->name, &in->node, &v);
	if (fd < 0)
		return fd;
	adopt(r, in, fd);
	in->rw->no_xattrs = v.nxattr == 0;
	if (v.type != CAIRN_NODE_DIR) {
		in->rw->lower = v.type == CAIRN_NODE_REG ? CFS_LOWER_PINNED : CFS_LOWER_NONE;
		in->rw->lower_len = v.size;
		in->rw->metacopy = v.type == CAIRN_NODE_REG;
	}
	return 0;
}

/* Opens in's data for reading and writing (once). */
static int data_fd(struct cfs_inode *in)
{
	char path[32];
	int fd;

	if (in->rw->dfd >= 0)
		return in->rw->dfd;
	fd = open(cfs_fdpath(in->rw->ufd, path), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	in->rw->dfd = fd;
	return fd;
}

/*
 * Gives a file its own data: copied up, then (if metacopy) the image's
 * bytes written into it, fsync'd, and only then the mark removed. With
 * truncate, the data is dropped instead of copied (an O_TRUNC open).
 */
static int copy_up_data(struct rq *r, struct cfs_inode *in, bool truncate)
{
	struct cairn_content_view cv;
	struct cairn_node_view v;
	char path[32];
	int ret = copy_up(r, in), fd;

	if (ret)
		return ret;
	if (in->type != CAIRN_NODE_REG)
		return 0;
	fd = data_fd(in);
	if (fd < 0)
		return fd;
	if (!in->rw->metacopy)
		return truncate && ftruncate(fd, 0) < 0 ? -errno : 0;
	if (truncate) {
		if (ftruncate(fd, 0) < 0)
			return -errno;
	} else {
		struct stat before;

		/* copying the data is no write of the container's: its times stay */
		if (fstat(fd, &before) < 0)
			return -errno;
		ret = node_get(r, &in->node, &v);
		if (!ret)
			ret = cairn_file_content(r->t->txn, &v, 0, &cv);
		for (uint32_t i = 0; !ret && i < cv.count; i++) {
			struct cairn_extent e;
			struct cfs_chunk *ch;

			cairn_content_extent(&cv, i, &e);
			if (e.start >= in->rw->lower_len)
				break; /* the rest is the file's own already */
			if (e.hole)
				continue; /* the copy is sparse already */
			ch = cfs_chunk_get(r->fs, r->t, &e.id, false, &ret);
			if (!ch)
				break;
			{
				uint64_t n = (e.end < in->rw->lower_len ? e.end : in->rw->lower_len) -
					     e.start;

				if ((uint64_t)ch->len != e.end - e.start ||
				    pwrite(fd, ch->data, n, (off_t)e.start) != (ssize_t)n)
					ret = -EIO;
			}
			cfs_chunk_unref(r->fs->cache, ch);
		}
		if (!ret) {
			struct timespec ts[2] = { before.st_atim, before.st_mtim };

			if (futimens(fd, ts) < 0 || fdatasync(fd) < 0)
				ret = -errno;
		}
		if (ret)
			return ret;
	}
	if (removexattr(cfs_fdpath(in->rw->ufd, path), CFS_XATTR_METACOPY) < 0 && errno != ENODATA)
		return -errno;
	in->rw->metacopy = false;
	return 0;
}

/* A metacopy file keeps only its first n bytes from the image from now on. */
static int set_lower_len(struct cfs_inode *in, uint64_t n)
{
	char path[32], val[24];

	if (n >= in->rw->lower_len)
		return 0;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)n);
	if (setxattr(cfs_fdpath(in->rw->ufd, path), CFS_XATTR_METACOPY, val, strlen(val), 0) < 0)
		return -errno;
	in->rw->lower_len = n;
	return 0;
}

int cfs_rw_root_attrs(struct cfs *fs, const struct cairn_node_view *v)
{
	struct timespec ts[2];
	char path[32];
	int fd = fs->upper->tree_fd;

	cfs_fdpath(fd, path);
	if (fchownat(fd, "", v->uid, v->gid, AT_EMPTY_PATH) < 0 ||
	    chmod(path, cairn_node_st_mode(v) & 07777) < 0)
		return -errno;
	if (copy_xattrs(v, path))
		return -EIO;
	ts[0].tv_sec = ts[1].tv_sec = v->mtime_sec;
	ts[0].tv_nsec = ts[1].tv_nsec = v->mtime_nsec;
	return utimensat(AT_FDCWD, path, ts, 0) < 0 ? -errno : 0;
}

/* ---- creating entries ---- */

/* The owner a new entry gets: the caller, or a set-gid directory's group. */
static void new_owner(fuse_req_t req, struct rq *r, struct cfs_inode *p, uid_t *uid, gid_t *gid,
		      bool *setgid)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct stat pst;

	*uid = c->uid;
	*gid = c->gid;
	*setgid = false;
	(void)r;
	if (fstat(p->rw->ufd, &pst) == 0 && (pst.st_mode & S_ISGID)) {
		*gid = pst.st_gid;
		*setgid = true;
	}
}

/*
 * Puts the object made as tmp in work/ at name in p: over a whiteout
 * (atomically) or where nothing is. Returns 0 or -errno.
 */
static int place(struct rq *r, struct cfs_inode *p, const char *tmp, const char *name, bool isdir)
{
	struct cfs_upper *u = r->fs->upper;
	struct stat st;

	if (fstatat(p->rw->ufd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!cfs_is_whiteout(&st))
			return -EEXIST;
		if (isdir) {
			/* a directory cannot replace a device: swap, then drop the whiteout */
			if (renameat2(u->work_fd, tmp, p->rw->ufd, name, RENAME_EXCHANGE) < 0)
				return -errno;
			unlinkat(u->work_fd, tmp, 0);
			return 0;
		}
		return renameat(u->work_fd, tmp, p->rw->ufd, name) < 0 ? -errno : 0;
	}
	return renameat2(u->work_fd, tmp, p->rw->ufd, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

/*
 * Makes an object of the given kind at name in dirfd, owned by uid:gid;
 * with opaque, marked so. Returns 0 or -errno; *fd is the open file of a
 * regular one.
 */
static int new_at(int dirfd, const char *name, mode_t mode, dev_t rdev, const char *target,
		  uid_t uid, gid_t gid, bool setgid, bool opaque, int *fd)
{
	mode_t perm = (mode & 07777) | (S_ISDIR(mode) && setgid ? S_ISGID : 0);
	char xpath[300];
	int ret = 0;

	*fd = -1;
	switch (mode & S_IFMT) {
	case S_IFDIR:
		ret = mkdirat(dirfd, name, perm) < 0 ? -errno : 0;
		break;
	case S_IFREG:
		*fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm);
		ret = *fd < 0 ? -errno : 0;
		break;
	case S_IFLNK:
		ret = symlinkat(target, dirfd, name) < 0 ? -errno : 0;
		break;
	default:
		ret = mknodat(dirfd, name, mode, rdev) < 0 ? -errno : 0;
		break;
	}
	if (ret)
		return ret;
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* a chown drops set-id bits: the mode again if it has any */
	if ((perm & 07000) && !S_ISLNK(mode) && fchmodat(dirfd, name, perm, 0) < 0)
		return -errno;
	snprintf(xpath, sizeof(xpath), "/proc/self/fd/%d/%s", dirfd, name);
	if (opaque && lsetxattr(xpath, CFS_XATTR_OPAQUE, "y", 1, 0) < 0)
		return -errno;
	return 0;
}

/*
 * Creates an entry of the given kind at name in p, as the caller; returns
 * its inode (referenced) or NULL with *err. A regular file's inode gets
 * the open file as its data fd.
 */
static struct cfs_inode *make_entry(fuse_req_t req, struct rq *r, struct cfs_inode *p,
				    const char *name, mode_t mode, dev_t rdev, const char *target,
				    int *err)
{
	struct cfs_upper *u = r->fs->upper;
	struct cfs_inode *in;
	struct entry e;
	uid_t uid;
	gid_t gid;
	bool setgid, opaque;
	int ret, fd = -1;

	ret = resolve(r, p, name, &e);
	if (ret == 0) {
		entry_release(&e);
		*err = -EEXIST;
		return NULL;
	}
	if (ret != -ENOENT) {
		*err = ret;
		return NULL;
	}
	ret = copy_up(r, p);
	if (ret) {
		*err = ret;
		return NULL;
	}
	new_owner(req, r, p, &uid, &gid, &setgid);
	/* where the image has something, a new directory shows none of it */
	opaque = S_ISDIR(mode) && e.below;
	if (!e.whiteout && !opaque) {
		/* nothing to replace, nothing to mark: made in place, atomically by O_EXCL */
		ret = new_at(p->rw->ufd, name, mode, rdev, target, uid, gid, setgid, false, &fd);
		if (ret && ret != -EEXIST)
			unlinkat(p->rw->ufd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
	} else {
		/* over a whiteout, or marked: made aside, then swapped in */
		char tmp[32];

		cfs_upper_tmpname(u, tmp);
		ret = new_at(u->work_fd, tmp, mode, rdev, target, uid, gid, setgid, opaque, &fd);
		if (!ret)
			ret = place(r, p, tmp, name, S_ISDIR(mode));
		if (ret)
			cfs_remove_tree(u->work_fd, tmp);
	}
	if (ret) {
		if (fd >= 0)
			close(fd);
		*err = ret;
		return NULL;
	}
	memset(&e, 0, sizeof(e));
	e.ufd = openat(p->rw->ufd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (e.ufd < 0 || fstat(e.ufd, &e.st) < 0) {
		*err = -errno;
		if (e.ufd >= 0)
			close(e.ufd);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	e.type = st_type(e.st.st_mode);
	e.kind = CFS_LOWER_NONE;
	e.opaque = opaque;
	e.no_xattrs = true;
	in = entry_ref(r, p, name, &e);
	if (!in) {
		if (fd >= 0)
			close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	if (fd >= 0) {
		if (in->rw->dfd < 0)
			in->rw->dfd = fd;
		else
			close(fd);
	}
	return in;
}

/* mknod, mkdir and symlink: an entry made as the caller, answered with its inode. */
static void make_and_reply(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			   dev_t rdev, const char *target)
{
	struct rq r;
	struct cfs_inode *p, *in = NULL;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = inode_of(r.fs, parent);
	if (!p)
		ret = -ESTALE;
	else if (S_ISCHR(mode) && rdev == 0)
		ret = -EPERM; /* the upper's whiteout: a container cannot make one by hand */
	else
		in = make_entry(req, &r, p, name, mode, rdev, target, &ret);
	if (!in) {
		rq_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	reply_entry(req, &r, in);
}

static void rw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_and_reply(req, parent, name, mode, rdev, NULL);
}

static void rw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_and_reply(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void rw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_and_reply(req, parent, name, S_IFLNK | 0777, 0, link);
}

static void rw_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e = { 0 };
	struct rq r;
	struct cfs_inode *p, *in;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = inode_of(r.fs, parent);
	in = p ? make_entry(req, &r, p, name, S_IFREG | (mode & 07777), 0, NULL, &ret) : NULL;
	if (!p)
		ret = -ESTALE;
	if (in)
		ret = inode_stat(&r, in, &e.attr);
	if (ret) {
		if (in)
			cfs_inode_forget(r.fs, in->ino, 1);
		rq_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	e.ino = in->ino;
	e.attr_timeout = e.entry_timeout = r.fs->timeout;
	fi->fh = 0;
	fi->keep_cache = 1;
	rq_end(&r);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		cfs_inode_forget(r.fs, in->ino, 1);
}

static void rw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rq r;
	struct cfs_inode *in, *p;
	struct entry e;
	char tmp[32];
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	p = inode_of(r.fs, newparent);
	if (!in || !p) {
		ret = -ESTALE;
		goto fail;
	}
	ret = resolve(&r, p, newname, &e);
	if (ret == 0) {
		entry_release(&e);
		ret = -EEXIST;
		goto fail;
	}
	if (ret != -ENOENT)
		goto fail;
	ret = copy_up(&r, in);
	if (!ret)
		ret = copy_up(&r, p);
	if (ret)
		goto fail;
	cfs_upper_tmpname(r.fs->upper, tmp);
	if (linkat(in->rw->ufd, "", r.fs->upper->work_fd, tmp, AT_EMPTY_PATH) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = place(&r, p, tmp, newname, false);
	if (ret) {
		unlinkat(r.fs->upper->work_fd, tmp, 0);
		goto fail;
	}
	pthread_mutex_lock(&r.fs->itable_lock);
	in->nlookup++;
	pthread_mutex_unlock(&r.fs->itable_lock);
	reply_entry(req, &r, in);
	return;
fail:
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

/* ---- removing entries ---- */

/* Is the merged directory in empty? Fills *has_whiteouts for its upper part. */
static int merged_empty(struct rq *r, struct cfs_inode *in)
{
	struct cairn_node_view v;
	DIR *d;
	int fd;

	if (in->rw->ufd >= 0) {
		fd = openat(in->rw->ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		d = fdopendir(fd);
		if (!d) {
			close(fd);
			return -ENOMEM;
		}
		for (struct dirent *de; (de = readdir(d));) {
			struct stat st;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !cfs_is_whiteout(&st)) {
				closedir(d);
				return -ENOTEMPTY;
			}
		}
		closedir(d);
	}
	if (in->rw->lower == CFS_LOWER_NONE)
		return 0;
	if (node_get(r, &in->node, &v))
		return -EIO;
	for (uint32_t i = 0; i < v.nentries; i++) {
		struct cairn_dirent de;
		char name[CAIRN_NAME_MAX + 1];
		struct stat st;

		if (cairn_dir_entry(&v, i, &de))
			return -EIO;
		memcpy(name, de.name, de.name_len);
		name[de.name_len] = '\0';
		if (in->rw->ufd < 0 || fstatat(in->rw->ufd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !cfs_is_whiteout(&st))
			return -ENOTEMPTY;
	}
	return 0;
}

/* Removes the whiteouts inside an upper directory the merged view shows empty. */
static int clear_whiteouts(int ufd)
{
	DIR *d;
	int fd = openat(ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	for (struct dirent *de; (de = readdir(d));) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    cfs_is_whiteout(&st))
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return 0;
}

/*
 * Takes name out of upper directory pufd, leaving a whiteout when the image
 * has an entry there (one rename where the filesystem can).
 */
static int remove_upper(struct rq *r, int pufd, const char *name, bool isdir, bool whiteout)
{
	struct cfs_upper *u = r->fs->upper;
	char tmp[32];

	if (!whiteout)
		return unlinkat(pufd, name, isdir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	cfs_upper_tmpname(u, tmp);
	if (u->rename_whiteout &&
	    renameat2(pufd, name, u->work_fd, tmp, RENAME_WHITEOUT) == 0)
		return unlinkat(u->work_fd, tmp, isdir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	/* a whiteout made aside, then swapped in */
	if (mknodat(u->work_fd, tmp, S_IFCHR | 0000, 0) < 0)
		return -errno;
	if (renameat2(u->work_fd, tmp, pufd, name, RENAME_EXCHANGE) < 0) {
		int e = errno;

		unlinkat(u->work_fd, tmp, 0);
		return -e;
	}
	return unlinkat(u->work_fd, tmp, isdir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

/* After name stopped leading to in: is in gone (no links left)? */
static void note_unlinked(struct rq *r, struct cfs_inode *in)
{
	struct stat st;

	if (in->rw->ufd >= 0 && in->type != CAIRN_NODE_DIR && fstat(in->rw->ufd, &st) == 0 &&
	    st.st_nlink > 0)
		return;
	in->rw->unlinked = true;
	unkey(r->fs, in);
}

static struct cfs_inode *inode_at(struct rq *r, struct cfs_inode *p, const char *name,
				  struct entry *e)
{
	uint64_t key = entry_key(p, name, e);
	struct cfs_inode *in;

	pthread_mutex_lock(&r->fs->itable_lock);
	in = key_find_locked(r->fs, key);
	pthread_mutex_unlock(&r->fs->itable_lock);
	return in;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool isdir)
{
	struct rq r;
	struct cfs_inode *p, *in = NULL;
	struct entry e;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = inode_of(r.fs, parent);
	ret = p ? resolve(&r, p, name, &e) : -ESTALE;
	if (ret)
		goto out;
	if (isdir != (e.type == CAIRN_NODE_DIR)) {
		ret = isdir ? -ENOTDIR : -EISDIR;
		goto out_e;
	}
	in = inode_at(&r, p, name, &e);
	if (!isdir && e.ufd < 0 && e.v.nlink > 1 && in) {
		/* a member of an image hard-link group: the others must see the count drop */
		entry_release(&e);
		ret = copy_up(&r, in);
		if (!ret)
			ret = resolve(&r, p, name, &e);
		if (ret)
			goto out;
	}
	if (isdir) {
		struct cfs_inode probe = { .type = CAIRN_NODE_DIR, .node = e.node };
		struct cfs_rw prw = { .ufd = e.ufd, .lower = e.kind };

		probe.rw = &prw;
		ret = merged_empty(&r, &probe);
		if (ret)
			goto out_e;
		if (e.ufd >= 0) {
			ret = clear_whiteouts(e.ufd);
			if (ret)
				goto out_e;
		}
	}
	ret = copy_up(&r, p);
	if (ret)
		goto out_e;
	if (e.ufd >= 0) {
		ret = remove_upper(&r, p->rw->ufd, name, isdir, e.below);
	} else {
		/* only the image's: a whiteout hides it */
		ret = mknodat(p->rw->ufd, name, S_IFCHR | 0000, 0) < 0 ? -errno : 0;
	}
	if (!ret && in)
		note_unlinked(&r, in);
out_e:
	entry_release(&e);
out:
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

static void rw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, false);
}

static void rw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, true);
}

/* ---- rename ---- */

/*
 * Prepares in (about to move to a place where the image has entry below,
 * or nothing) to carry its image part along: a directory bound by path
 * gets a redirect to its node; one with no image part gets opaque where
 * the image would show through.
 */
static int prepare_move(struct rq *r, struct cfs_inode *in, bool below_dir)
{
	char path[32], hex[CAIRN_ID_HEX_LEN + 1];

	if (in->type != CAIRN_NODE_DIR)
		return 0;
	cfs_fdpath(in->rw->ufd, path);
	if (in->rw->lower == CFS_LOWER_PATH) {
		cairn_id_hex(&in->node, hex);
		if (setxattr(path, CFS_XATTR_REDIRECT, hex, CAIRN_ID_HEX_LEN, 0) < 0)
			return -errno;
		in->rw->lower = CFS_LOWER_PINNED;
	} else if (in->rw->lower == CFS_LOWER_NONE && below_dir && !in->rw->opaque) {
		if (setxattr(path, CFS_XATTR_OPAQUE, "y", 1, 0) < 0)
			return -errno;
		in->rw->opaque = true;
	}
	return 0;
}

static void rw_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct cfs_upper *u;
	struct rq r;
	struct cfs_inode *p, *np, *src = NULL, *dst = NULL;
	struct entry se, de;
	bool dst_exists;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	u = r.fs->upper;
	memset(&de, 0, sizeof(de));
	de.ufd = -1;
	p = inode_of(r.fs, parent);
	np = inode_of(r.fs, newparent);
	if (!p || !np) {
		ret = -ESTALE;
		goto out;
	}
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		ret = -EINVAL;
		goto out;
	}
	ret = resolve(&r, p, name, &se);
	if (ret)
		goto out;
	ret = resolve(&r, np, newname, &de);
	if (ret && ret != -ENOENT)
		goto out_se;
	dst_exists = ret == 0;
	if (strlen(newname) > CAIRN_NAME_MAX) {
		ret = -ENAMETOOLONG;
		goto out_de;
	}
	if ((flags & RENAME_NOREPLACE) && dst_exists) {
		ret = -EEXIST;
		goto out_de;
	}
	if ((flags & RENAME_EXCHANGE) && !dst_exists) {
		ret = -ENOENT;
		goto out_de;
	}
	/* the same object under both names: nothing to do (POSIX) */
	if (dst_exists && !(flags & RENAME_EXCHANGE)) {
		struct cfs_inode *a = inode_at(&r, p, name, &se), *b = inode_at(&r, np, newname, &de);

		if (a && a == b) {
			ret = 0;
			goto out_de;
		}
		if (se.ufd >= 0 && de.ufd >= 0 && se.st.st_ino == de.st.st_ino) {
			ret = 0;
			goto out_de;
		}
	}
	if (dst_exists && !(flags & RENAME_EXCHANGE) && de.type == CAIRN_NODE_DIR) {
		struct cfs_inode probe = { .type = CAIRN_NODE_DIR, .node = de.node };
		struct cfs_rw prw = { .ufd = de.ufd, .lower = de.kind };

		if (se.type != CAIRN_NODE_DIR) {
			ret = -EISDIR;
			goto out_de;
		}
		probe.rw = &prw;
		ret = merged_empty(&r, &probe);
		if (ret)
			goto out_de;
	} else if (dst_exists && !(flags & RENAME_EXCHANGE) && se.type == CAIRN_NODE_DIR) {
		ret = -ENOTDIR;
		goto out_de;
	}

	/* both ends get upper objects; the inodes the kernel holds follow */
	src = inode_at(&r, p, name, &se);
	if (dst_exists)
		dst = inode_at(&r, np, newname, &de);
	if (!src) {
		ret = -ESTALE; /* the kernel looked it up before renaming */
		goto out_de;
	}
	if (dst && de.ufd < 0 && de.type != CAIRN_NODE_DIR && de.v.nlink > 1 &&
	    !(flags & RENAME_EXCHANGE)) {
		/* replacing a member of an image hard-link group: the others must see the count drop */
		entry_release(&de);
		ret = copy_up(&r, dst);
		if (!ret)
			ret = resolve(&r, np, newname, &de);
		if (ret)
			goto out_se;
	}
	ret = copy_up(&r, p);
	if (!ret)
		ret = copy_up(&r, np);
	if (!ret)
		ret = copy_up(&r, src);
	if (!ret && (flags & RENAME_EXCHANGE)) {
		ret = dst ? copy_up(&r, dst) : -ESTALE;
		if (!ret)
			ret = prepare_move(&r, dst, se.below && se.lower.type == CAIRN_NODE_DIR);
	}
	if (!ret)
		ret = prepare_move(&r, src, de.below && de.lower.type == CAIRN_NODE_DIR);
	if (ret)
		goto out_de;
	if (dst_exists && !(flags & RENAME_EXCHANGE) && de.type == CAIRN_NODE_DIR && de.ufd >= 0) {
		ret = clear_whiteouts(de.ufd);
		if (ret)
			goto out_de;
	}

	if (flags & RENAME_EXCHANGE) {
		if (renameat2(p->rw->ufd, name, np->rw->ufd, newname, RENAME_EXCHANGE) < 0)
			ret = -errno;
	} else {
		struct stat st;
		bool wh_at_dst = fstatat(np->rw->ufd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				 cfs_is_whiteout(&st);
		bool need_wh = se.below; /* the image's entry at the old name must stay hidden */

		if (wh_at_dst && se.type == CAIRN_NODE_DIR) {
			/* a directory cannot replace the whiteout device: swap them */
			if (renameat2(p->rw->ufd, name, np->rw->ufd, newname, RENAME_EXCHANGE) < 0)
				ret = -errno;
			else if (!need_wh && unlinkat(p->rw->ufd, name, 0) < 0)
				ret = -errno;
		} else if (need_wh && u->rename_whiteout) {
			if (renameat2(p->rw->ufd, name, np->rw->ufd, newname, RENAME_WHITEOUT) < 0)
				ret = -errno;
		} else {
			if (renameat(p->rw->ufd, name, np->rw->ufd, newname) < 0)
				ret = -errno;
			else if (need_wh && mknodat(p->rw->ufd, name, S_IFCHR | 0000, 0) < 0)
				ret = -errno;
		}
	}
	if (ret)
		goto out_de;
	/* directories know their place: they are re-bound and found by it */
	if (src->type == CAIRN_NODE_DIR) {
		char *n = strdup(newname);

		if (n) {
			free(src->name);
			src->name = n;
			src->parent = np->ino;
		}
	}
	if (flags & RENAME_EXCHANGE) {
		if (dst->type == CAIRN_NODE_DIR) {
			char *n = strdup(name);

			if (n) {
				free(dst->name);
				dst->name = n;
				dst->parent = p->ino;
			}
		}
	} else if (dst) {
		note_unlinked(&r, dst);
	}
out_de:
	entry_release(&de);
out_se:
	entry_release(&se);
out:
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

/* ---- attributes and xattrs ---- */

/* chmod of an upper object: through its data fd, fchmodat2, or /proc. */
static int set_mode(struct cfs_inode *in, mode_t mode)
{
	char path[32];

	if (in->rw->dfd >= 0)
		return fchmod(in->rw->dfd, mode);
	if (syscall(SYS_fchmodat2, (int)in->rw->ufd, "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
	return chmod(cfs_fdpath(in->rw->ufd, path), mode);
}

static void rw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct rq r;
	struct cfs_inode *in;
	struct stat st;
	char path[32];
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (!in) {
		ret = -ESTALE;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (in->type != CAIRN_NODE_REG) {
			ret = in->type == CAIRN_NODE_DIR ? -EISDIR : -EINVAL;
			goto out;
		}
		if (attr->st_size == 0) {
			ret = copy_up_data(&r, in, true);
		} else {
			/* a metacopy file keeps its image part: only what is cut goes */
			ret = copy_up(&r, in);
			if (!ret && data_fd(in) < 0)
				ret = -EIO;
			if (!ret && in->rw->metacopy)
				ret = set_lower_len(in, (uint64_t)attr->st_size);
		}
		if (!ret && ftruncate(in->rw->dfd, attr->st_size) < 0)
			ret = -errno;
	} else {
		ret = copy_up(&r, in);
	}
	if (ret)
		goto out;
	cfs_fdpath(in->rw->ufd, path);
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(in->rw->ufd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			goto out;
		}
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && in->type != CAIRN_NODE_LNK &&
	    set_mode(in, attr->st_mode & 07777) < 0) {
		ret = -errno;
		goto out;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME)) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			ts[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			ts[1] = attr->st_mtim;
		if (utimensat(in->rw->ufd, "", ts, AT_EMPTY_PATH) < 0 &&
		    (errno != EINVAL || utimensat(AT_FDCWD, path, ts, 0) < 0)) {
			ret = -errno;
			goto out;
		}
	}
	ret = inode_stat(&r, in, &st);
out:
	rq_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, r.fs->timeout);
}

static void rw_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rq r;
	struct cfs_inode *in;
	struct cairn_node_view v;
	char target[PATH_MAX + 1];
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (!in) {
		ret = -ESTALE;
	} else if (in->rw->ufd >= 0) {
		ssize_t n = readlinkat(in->rw->ufd, "", target, sizeof(target) - 1);

		if (n < 0)
			ret = -errno;
		else
			target[n] = '\0';
	} else if (!(ret = node_get(&r, &in->node, &v))) {
		if (v.type != CAIRN_NODE_LNK) {
			ret = -EINVAL;
		} else {
			memcpy(target, v.target, v.target_len);
			target[v.target_len] = '\0';
		}
	}
	rq_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_readlink(req, target);
}

/* A name in a namespace Linux knows; any other is EOPNOTSUPP, as on a local filesystem. */
static bool xattr_known(const char *name)
{
	static const char *const ns[] = { "user.", "trusted.", "security.", "system." };

	for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
		if (strncmp(name, ns[i], strlen(ns[i])) == 0)
			return true;
	return false;
}

static void reply_xattr_buf(fuse_req_t req, const void *buf, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, len);
}

static void rw_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct rq r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rq_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (!in || !un) {
		rq_end(&r);
		fuse_reply_err(req, in ? ENODATA : ESTALE);
		return;
	}
	if (in->rw->ufd >= 0 && in->rw->no_xattrs) {
		/* asked on every write (security.capability): answered without a syscall */
		rq_end(&r);
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (in->rw->ufd >= 0) {
		char *buf = malloc(XATTR_SIZE_MAX);
		ssize_t n = buf ? getxattr(cfs_fdpath(in->rw->ufd, path), un, buf, XATTR_SIZE_MAX)
				: -1;

		rq_end(&r);
		if (n < 0)
			fuse_reply_err(req, buf ? errno : ENOMEM);
		else
			reply_xattr_buf(req, buf, (size_t)n, size);
		free(buf);
		return;
	}
	{
		struct cairn_node_view v;
		struct cairn_xattr x;

		ret = node_get(&r, &in->node, &v);
		if (!ret)
			ret = cairn_xattr_get(&v, name, &x);
		if (ret) {
			rq_end(&r);
			fuse_reply_err(req, ret == -ENODATA ? ENODATA : EIO);
			return;
		}
		reply_xattr_buf(req, x.value, x.value_len, size);
		rq_end(&r);
	}
}

static void rw_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rq r;
	struct cfs_inode *in;
	struct cairn_buf list = { 0 };
	char path[32];
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (!in) {
		ret = -ESTALE;
	} else if (in->rw->ufd >= 0 && in->rw->no_xattrs) {
		ret = 0;
	} else if (in->rw->ufd >= 0) {
		char *raw = malloc(XATTR_LIST_MAX);
		ssize_t n = raw ? listxattr(cfs_fdpath(in->rw->ufd, path), raw, XATTR_LIST_MAX) : -1;

		if (n < 0)
			ret = raw ? -errno : -ENOMEM;
		for (ssize_t off = 0; !ret && off < n; off += (ssize_t)strlen(raw + off) + 1) {
			char xb[XNAME_BUF];
			const char *c = cfs_xattr_from_upper(raw + off, xb, sizeof(xb));

			if (c && cairn_buf_append(&list, c, strlen(c) + 1))
				ret = -ENOMEM;
		}
		free(raw);
	} else {
		struct cairn_node_view v;
		struct cairn_xattr x;
		size_t off = 0;

		ret = node_get(&r, &in->node, &v);
		while (!ret && (ret = cairn_xattr_next(&v, &off, &x)) == 0)
			if (cairn_buf_append(&list, x.name, x.name_len) ||
			    cairn_buf_append(&list, "", 1))
				ret = -ENOMEM;
		if (ret == -ENOENT)
			ret = 0;
	}
	rq_end(&r);
	if (!ret && list.len)
		list.len = cfs_list_hide_trusted(req, (char *)list.data, list.len);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_xattr_buf(req, list.data, list.len, size);
	cairn_buf_release(&list);
}

static void rw_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct rq r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rq_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	ret = !in ? -ESTALE : !un ? -ERANGE : copy_up(&r, in);
	if (!ret && setxattr(cfs_fdpath(in->rw->ufd, path), un, value, size, flags) < 0)
		ret = -errno;
	if (!ret)
		in->rw->no_xattrs = false;
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

static void rw_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rq r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rq_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	ret = !in ? -ESTALE : !un ? -ENODATA : 0;
	if (!ret && in->rw->ufd < 0) {
		/* absent in the image: no copy-up just to fail */
		struct cairn_node_view v;
		struct cairn_xattr x;

		ret = node_get(&r, &in->node, &v);
		if (!ret && cairn_xattr_get(&v, name, &x))
			ret = -ENODATA;
	}
	if (!ret)
		ret = copy_up(&r, in);
	if (!ret && removexattr(cfs_fdpath(in->rw->ufd, path), un) < 0)
		ret = -errno;
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

/* ---- files ---- */

/* Reads len bytes at off of node into buf (below its size; holes are zeros). */
static int read_lower(struct rq *r, const struct cairn_id *node, uint64_t off, size_t len,
		      uint8_t *buf)
{
	struct cairn_content_view cv;
	struct cairn_node_view v;
	uint64_t end = off + len;
	int ret = node_get(r, node, &v);

	if (!ret)
		ret = cairn_file_content(r->t->txn, &v, 0, &cv);
	if (ret)
		return -EIO;
	memset(buf, 0, len);
	for (uint32_t i = cairn_content_find(&cv, off); i < cv.count; i++) {
		struct cairn_extent e;
		struct cfs_chunk *ch;
		uint64_t a, b;

		cairn_content_extent(&cv, i, &e);
		if (e.start >= end)
			break;
		if (e.end <= off || e.hole)
			continue;
		ch = cfs_chunk_get(r->fs, r->t, &e.id, false, &ret);
		if (!ch)
			return ret ? ret : -EIO;
		a = e.start > off ? e.start : off;
		b = e.end < end ? e.end : end;
		if ((uint64_t)ch->len == e.end - e.start)
			memcpy(buf + (a - off), ch->data + (a - e.start), b - a);
		else
			ret = -EIO;
		cfs_chunk_unref(r->fs->cache, ch);
		if (ret)
			return ret;
	}
	return 0;
}

static void rw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rq r;
	struct cfs_inode *in;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (!in)
		ret = -ESTALE;
	else if ((fi->flags & O_ACCMODE) != O_RDONLY && (fi->flags & O_TRUNC))
		ret = copy_up_data(&r, in, true);
	else if ((fi->flags & O_ACCMODE) != O_RDONLY)
		ret = copy_up(&r, in); /* the data waits for a write that needs it */
	if (!ret && in->rw->ufd >= 0 && in->type == CAIRN_NODE_REG)
		ret = data_fd(in) < 0 ? -EIO : 0;
	rq_end(&r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1; /* every change goes through this mount */
	fuse_reply_open(req, fi);
}

/* The data fd of an inode whose data is in the upper, or -1 (the image's). */
static int upper_data(struct cfs *fs, fuse_ino_t ino)
{
	struct cfs_inode *in = inode_of(fs, ino);
	int fd = -1;

	if (!in)
		return -ESTALE;
	fd = in->rw->dfd;
	if (fd >= 0 && !in->rw->metacopy)
		return fd; /* set once, never changed while the inode lives */
	fd = -1;
	pthread_mutex_lock(&fs->ns_lock);
	if (in->rw->ufd >= 0 && !in->rw->metacopy)
		fd = in->rw->dfd >= 0 ? in->rw->dfd : data_fd(in);
	pthread_mutex_unlock(&fs->ns_lock);
	return fd;
}

/*
 * A read of a metacopy file reaching past its image part: the image's
 * bytes below lower_len, the file's own above. 1 when it replied, 0 when
 * the image alone answers.
 */
static int read_split(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off)
{
	struct rq r;
	struct cfs_inode *in;
	uint8_t *buf = NULL;
	uint64_t lower_len;
	ssize_t got = 0;
	int ret = rq_begin(req, &r), fd;

	if (ret) {
		fuse_reply_err(req, -ret);
		return 1;
	}
	in = inode_of(r.fs, ino);
	if (!in || !in->rw->metacopy || in->rw->ufd < 0) {
		rq_end(&r);
		return 0; /* copied up since: the caller looks again */
	}
	lower_len = in->rw->lower_len;
	if ((uint64_t)off + size <= lower_len) {
		rq_end(&r);
		return 0;
	}
	fd = data_fd(in);
	buf = malloc(size);
	if (fd < 0 || !buf) {
		ret = fd < 0 ? fd : -ENOMEM;
	} else {
		size_t below = (uint64_t)off < lower_len ? (size_t)(lower_len - (uint64_t)off) : 0;

		if (below)
			ret = read_lower(&r, &in->node, (uint64_t)off, below, buf);
		if (!ret) {
			got = pread(fd, buf + below, size - below, off + (off_t)below);
			if (got < 0)
				ret = -errno;
			else
				got += (ssize_t)below;
		}
	}
	rq_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, (const char *)buf, (size_t)got);
	free(buf);
	return 1;
}

static void rw_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	int fd = upper_data(cfs_of(req), ino);

	if (fd == -1) {
		if (read_split(req, ino, size, off))
			return;
		fd = upper_data(cfs_of(req), ino);
	}
	if (fd == -1) {
		cfs_read_image(req, ino, size, off, fi);
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void rw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	struct cfs *fs = cfs_of(req);
	int fd = upper_data(fs, ino);
	ssize_t n;

	if (fd == -1) {
		/*
		 * A metacopy file: a write past its image part (an append) goes
		 * into the file as it is; one below needs the image's data first.
		 */
		struct rq r;
		struct cfs_inode *in;
		int ret = rq_begin(req, &r);

		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		in = inode_of(fs, ino);
		if (!in)
			ret = -ESTALE;
		else if (in->rw->metacopy && (uint64_t)off >= in->rw->lower_len)
			ret = copy_up(&r, in);
		else
			ret = copy_up_data(&r, in, false);
		fd = ret ? ret : data_fd(in);
		if (fd >= 0) {
			/* under the lock: a truncation must not move lower_len meanwhile */
			out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			out.buf[0].fd = fd;
			out.buf[0].pos = off;
			n = fuse_buf_copy(&out, in_buf, 0);
		}
		rq_end(&r);
		if (fd < 0)
			fuse_reply_err(req, -fd);
		else if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_write(req, (size_t)n);
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void rw_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void rw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cfs_inode *in = inode_of(cfs_of(req), ino);
	int fd = in ? in->rw->dfd : -1, ret = 0;

	if (fd >= 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		ret = errno;
	fuse_reply_err(req, in ? ret : ESTALE);
}

static void rw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	struct rq r;
	struct cfs_inode *in;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	ret = in ? copy_up_data(&r, in, false) : -ESTALE;
	if (!ret && fallocate(in->rw->dfd, mode, offset, length) < 0)
		ret = -errno;
	rq_end(&r);
	fuse_reply_err(req, -ret);
}

static void rw_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	int fd = upper_data(cfs_of(req), ino);
	off_t res;

	if (fd == -1) {
		struct cfs_inode *in = inode_of(cfs_of(req), ino);
		struct stat st;

		/* a file with its own bytes past the image part: its own data first */
		if (in && in->rw->metacopy && in->rw->dfd >= 0 && fstat(in->rw->dfd, &st) == 0 &&
		    (uint64_t)st.st_size != in->rw->lower_len) {
			struct rq r;
			int ret = rq_begin(req, &r);

			if (!ret) {
				ret = copy_up_data(&r, in, false);
				rq_end(&r);
			}
			if (ret) {
				fuse_reply_err(req, -ret);
				return;
			}
			fd = upper_data(cfs_of(req), ino);
		}
	}
	if (fd == -1) {
		cfs_lseek_image(req, ino, off, whence, fi);
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	res = lseek(fd, off, whence);
	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

/* ---- directories ---- */

struct dirsnap {
	size_t n;
	struct dirsnap_ent {
		char *name;
		uint8_t type;
	} *v;
};

static void snap_free(struct dirsnap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s);
}

static int snap_add(struct dirsnap *s, size_t *cap, const char *name, size_t len, uint8_t type)
{
	if (s->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct dirsnap_ent *v = realloc(s->v, c * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		*cap = c;
	}
	s->v[s->n].name = strndup(name, len);
	if (!s->v[s->n].name)
		return -ENOMEM;
	s->v[s->n++].type = type;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The merged listing of in: the upper's names, then the image's it does not cover. */
static int snapshot(struct rq *r, struct cfs_inode *in, struct dirsnap **out)
{
	struct dirsnap *s = calloc(1, sizeof(*s));
	char **upper = NULL;
	size_t nupper = 0, capu = 0, cap = 0;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	if (in->rw->ufd >= 0) {
		int fd = openat(in->rw->ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

		if (!d) {
			ret = fd < 0 ? -errno : -ENOMEM;
			if (fd >= 0)
				close(fd);
		}
		for (struct dirent *de; !ret && d && (de = readdir(d));) {
			struct stat st;
			bool wh = false;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (de->d_type == DT_CHR || de->d_type == DT_UNKNOWN)
				wh = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				     cfs_is_whiteout(&st);
			if (nupper == capu) {
				size_t c = capu ? capu * 2 : 64;
				char **v = realloc(upper, c * sizeof(*v));

				if (!v) {
					ret = -ENOMEM;
					break;
				}
				upper = v;
				capu = c;
			}
			upper[nupper] = strdup(de->d_name);
			if (!upper[nupper]) {
				ret = -ENOMEM;
				break;
			}
			nupper++;
			if (!wh)
				ret = snap_add(s, &cap, de->d_name, strlen(de->d_name),
					       de->d_type == DT_DIR ? CAIRN_NODE_DIR :
					       de->d_type == DT_REG ? CAIRN_NODE_REG :
					       de->d_type == DT_LNK ? CAIRN_NODE_LNK :
					       de->d_type == DT_CHR ? CAIRN_NODE_CHR :
					       de->d_type == DT_BLK ? CAIRN_NODE_BLK :
					       de->d_type == DT_FIFO ? CAIRN_NODE_FIFO :
					       CAIRN_NODE_SOCK);
		}
		if (d)
			closedir(d);
		if (nupper)
			qsort(upper, nupper, sizeof(*upper), by_name);
	}
	if (!ret && in->rw->lower != CFS_LOWER_NONE) {
		struct cairn_node_view v;

		ret = node_get(r, &in->node, &v);
		for (uint32_t i = 0; !ret && i < v.nentries; i++) {
			struct cairn_dirent de;
			char name[CAIRN_NAME_MAX + 1], *key = name;

			if (cairn_dir_entry(&v, i, &de)) {
				ret = -EIO;
				break;
			}
			memcpy(name, de.name, de.name_len);
			name[de.name_len] = '\0';
			if (nupper && bsearch(&key, upper, nupper, sizeof(*upper), by_name))
				continue;
			ret = snap_add(s, &cap, de.name, de.name_len, de.type);
		}
	}
	for (size_t i = 0; i < nupper; i++)
		free(upper[i]);
	free(upper);
	if (ret) {
		snap_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

static void rw_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rq r;
	struct cfs_inode *in;
	struct dirsnap *s = NULL;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	ret = in ? snapshot(&r, in, &s) : -ESTALE;
	rq_end(&r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)s;
	if (fuse_reply_open(req, fi) == -ENOENT)
		snap_free(s);
}

static void rw_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free((struct dirsnap *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct dirsnap *s = (struct dirsnap *)(uintptr_t)fi->fh;
	struct rq r;
	struct cfs_inode *in;
	char *buf, *p;
	size_t rem;
	int ret = rq_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = inode_of(r.fs, ino);
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	buf = malloc(size);
	if (!in || !buf) {
		rq_end(&r);
		free(buf);
		fuse_reply_err(req, in ? ENOMEM : ESTALE);
		return;
	}
	p = buf;
	rem = size;
	for (uint64_t pos = (uint64_t)off; pos < 2 + s->n; pos++) {
		struct fuse_entry_param e = { 0 };
		struct cfs_inode *child = NULL;
		const char *name;
		size_t n;

		if (pos < 2) {
			name = pos == 0 ? "." : "..";
			e.attr.st_ino = pos == 0 || in->ino == FUSE_ROOT_ID ? in->ino : in->parent;
			e.attr.st_mode = S_IFDIR;
		} else {
			struct entry ent;

			name = s->v[pos - 2].name;
			if (resolve(&r, in, name, &ent))
				continue; /* gone since the directory was opened */
			if (plus) {
				child = entry_ref(&r, in, name, &ent);
				if (!child || inode_stat(&r, child, &e.attr)) {
					if (child)
						cfs_inode_forget(r.fs, child->ino, 1);
					continue;
				}
				e.ino = child->ino;
				e.attr_timeout = e.entry_timeout = r.fs->timeout;
			} else {
				struct cfs_inode *known = inode_at(&r, in, name, &ent);

				e.attr.st_ino = known ? known->ino : entry_key(in, name, &ent);
				e.attr.st_mode = cairn_type_st_mode(ent.type);
				entry_release(&ent);
			}
		}
		if (plus)
			n = fuse_add_direntry_plus(req, p, rem, name, &e, (off_t)pos + 1);
		else
			n = fuse_add_direntry(req, p, rem, name, &e.attr, (off_t)pos + 1);
		if (n > rem) {
			if (child)
				cfs_inode_forget(r.fs, child->ino, 1);
			break;
		}
		p += n;
		rem -= n;
	}
	rq_end(&r);
	fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void rw_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void rw_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void rw_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = inode_of(fs, ino);
	int ret = 0;

	if (in && in->rw->ufd >= 0) {
		int fd = openat(in->rw->ufd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0)
			ret = errno;
		if (fd >= 0)
			close(fd);
	}
	fuse_reply_err(req, in ? ret : ESTALE);
}

static void rw_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs *fs = cfs_of(req);
	struct statvfs st;

	if (fstatvfs(fs->upper->dir_fd, &st) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	st.f_namemax = CAIRN_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

static void rw_init(void *userdata, struct fuse_conn_info *conn)
{
	cfs_init(userdata, conn);
	/* opens and listings change: the kernel asks, and always for everything */
	conn->want &= ~(FUSE_CAP_NO_OPEN_SUPPORT | FUSE_CAP_NO_OPENDIR_SUPPORT |
			FUSE_CAP_READDIRPLUS_AUTO);
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->max_write = CFS_MAX_READ;
}

const struct fuse_lowlevel_ops cfs_rw_ops = {
	.init = rw_init,
	.lookup = rw_lookup,
	.forget = cfs_forget,
	.forget_multi = cfs_forget_multi,
	.getattr = rw_getattr,
	.setattr = rw_setattr,
	.readlink = rw_readlink,
	.mknod = rw_mknod,
	.mkdir = rw_mkdir,
	.unlink = rw_unlink,
	.rmdir = rw_rmdir,
	.symlink = rw_symlink,
	.rename = rw_rename,
	.link = rw_link,
	.open = rw_open,
	.read = rw_read,
	.write_buf = rw_write_buf,
	.flush = rw_flush,
	.release = rw_release,
	.fsync = rw_fsync,
	.opendir = rw_opendir,
	.readdir = rw_readdir,
	.readdirplus = rw_readdirplus,
	.releasedir = rw_releasedir,
	.fsyncdir = rw_fsyncdir,
	.statfs = rw_statfs,
	.setxattr = rw_setxattr,
	.getxattr = rw_getxattr,
	.listxattr = rw_listxattr,
	.removexattr = rw_removexattr,
	.create = rw_create,
	.fallocate = rw_fallocate,
	.lseek = rw_lseek,
};
