/* SPDX-License-Identifier: MIT */
/*
 * rw-copyup.c - copy-up: an image entry gets an upper object when it is
 * first changed.
 *
 * Copy-up is metadata first: a sparse file of the right size with the
 * image node's owner, mode, times and xattrs, marked metacopy, made as an
 * O_TMPFILE in its own upper directory (other types in work/) and linked
 * in when complete, so a half-made copy is never visible, also after a
 * crash. Its data stays the image's until a write needs it: then the
 * bytes are written into the file in place, fsync'd, and only then the
 * metacopy mark is removed, so a crash in between still shows the image's
 * bytes. chmod, chown, utimens and xattrs therefore copy no data. A
 * hard-link group of the image is copied up whole, its members linked, so
 * a write through one name shows through the others.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rw-internal.h"

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
 * The image's xattrs of node did not fit on the upper's filesystem (ext4
 * keeps them in one block): the copy-up fails with err and nothing made,
 * and the log says why, once per failure.
 */
static void xattrs_failed(struct rw_req *r, const char *name, const struct cairn_id *node,
			  const struct cairn_node_view *v, int err)
{
	struct cairn_xattr x;
	size_t off = 0, bytes = 0;
	char hex[CAIRN_ID_HEX_LEN + 1];

	while (cairn_xattr_next(v, &off, &x) == 0)
		bytes += x.name_len + 1 + x.value_len;
	cairn_id_hex(node, hex);
	cfs_log(r->fs, LOG_ERR, "cannot copy up '%s' (image node %.12s): its %u xattrs (%zu bytes) "
		"%s on the upper's filesystem: %s", name, hex, v->nxattr, bytes,
		err == -ENOSPC || err == -E2BIG || err == -ERANGE || err == -EDQUOT
			? "do not fit" : "cannot be set",
		strerrordesc_np(-err));
}

/*
 * Makes, in work/ under tmp, an upper copy of node v's metadata (a
 * directory, a sparse metacopy file, a symlink, a device...), with its
 * owner, mode, xattrs and times. Returns an O_PATH fd to it, or -errno.
 */
static int make_copy(struct rw_req *r, const struct cairn_id *node, const struct cairn_node_view *v,
		     const char *tmp, const char *name)
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
		if (rw_node_dev00(v)) {
			/* made as itself it would be a whiteout: an empty file that says what it is */
			fd = openat(u->work_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
			if (fd < 0)
				return -errno;
			if (fsetxattr(fd, CFS_XATTR_DEVICE, CFS_DEVICE_CHR00,
				      strlen(CFS_DEVICE_CHR00), 0) < 0)
				ret = -errno;
			break;
		}
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
	if (!ret) {
		ret = copy_xattrs(v, xpath);
		if (ret)
			xattrs_failed(r, name, node, v, ret);
	}
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
static int copy_up_tmpfile(struct rw_req *r, int dirfd, const char *name,
			   const struct cairn_id *node, const struct cairn_node_view *v)
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
	if (!ret) {
		ret = copy_xattrs_fd(v, fd, NULL);
		if (ret)
			xattrs_failed(r, name, node, v, ret);
	}
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

static int copy_up_at(struct rw_req *r, int dirfd, const char *name, const struct cairn_id *node,
		      const struct cairn_node_view *v)
{
	struct stat before;
	char tmp[32];
	int fd;

	if (v->type == CAIRN_NODE_REG) {
		fd = copy_up_tmpfile(r, dirfd, name, node, v);
		if (fd == -EEXIST) {
			fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			return fd < 0 ? -errno : fd;
		}
		if (fd != -EOPNOTSUPP)
			return fd;
	}
	cfs_upper_tmpname(r->fs->upper, tmp);
	fd = make_copy(r, node, v, tmp, name);
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


/* Sets in's upper object (an O_PATH fd it takes over) and its key. */
static void adopt(struct rw_req *r, struct cfs_inode *in, int fd)
{
	rw_install(r->fs, in, fd);
	if (in->rw->upper_ino)
		rw_rekey(r->fs, in, rw_upper_key(in->rw->upper_ino));
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
	struct rw_req *r;
	const struct cairn_id *node;
	const struct cairn_node_view *v;
	struct gframe *f;
	size_t nf, cap;
	int first;      /* the upper file made for the first member, or -1 */
	bool made_dirs; /* directories inodes do not know of were copied up */
	bool undo;      /* walking again to take back the links to first (first_ino) */
	ino_t first_ino;
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
		if (g->undo && d.type != CAIRN_NODE_DIR) {
			/* a link this copy-up made: taken back, the image's entry shows again */
			struct stat before;

			if (in_upper && st.st_ino == g->first_ino && fstat(ufd, &before) == 0 &&
			    unlinkat(ufd, name, 0) == 0)
				keep_times(ufd, &before);
			continue;
		}
		if (g->undo && !in_upper)
			continue; /* nothing of this copy-up can be below a directory it did not make */
		if (d.type == CAIRN_NODE_DIR) {
			struct cfs_marks m;
			bool none;
			int cfd = -1;

			if (in_upper) {
				if (!S_ISDIR(st.st_mode))
					continue;
				cfd = openat(ufd, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
				if (cfd < 0 || cfs_upper_marks_read(cfd, &m, &none)) {
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
			struct cfs_marks m;
			bool none;
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
			if (cfs_upper_marks_read(cfd, &m, &none)) {
				close(cfd);
				continue;
			}
			group_visit(g, k, cfd, m.has_redirect ? &m.redirect : NULL, de->d_name, depth);
		}
		closedir(dir);
	}
}

/* Walks the merged view for the group from the root (see group_dir()). */
static void group_walk(struct group_walk *g, int root_ufd)
{
	g->nf = 1;
	g->f[0] = (struct gframe){ .fd = fcntl(root_ufd, F_DUPFD_CLOEXEC, 0), .parent = -1,
				   .has_lower = true, .id = g->r->fs->root };
	if (g->f[0].fd < 0)
		g->err = -errno;
	else
		group_dir(g, 0, 0);
	if (g->f[0].fd >= 0)
		close(g->f[0].fd);
}

static int copy_up_group(struct rw_req *r, struct cfs_inode *in, const struct cairn_node_view *v)
{
	struct cfs_inode *root = cfs_inode_find(r->fs, FUSE_ROOT_ID);
	struct group_walk g = { .r = r, .node = &in->node, .v = v, .first = -1 };
	unsigned long link_max = r->fs->upper->link_max;

	/* a group is found by its node id: one walk of the image per group, once */
	if (!root)
		return -ESTALE;
	if (link_max && v->nlink > link_max) {
		/* refused before anything is linked: a part-linked group would split on a retry */
		cfs_log(r->fs, LOG_ERR, "cannot copy up '%s': its hard-link group has %u names in the "
			"image, more than the upper's filesystem links to one file (%lu)",
			in->name ? in->name : "/", v->nlink, link_max);
		return -EMLINK;
	}
	g.f = calloc(32, sizeof(*g.f));
	if (!g.f)
		return -ENOMEM;
	g.cap = 32;
	group_walk(&g, rw_ufd(r->fs, root));
	if (g.err && g.first >= 0) {
		/* part of the group is linked (EMLINK where the limit was not known): take it back */
		struct stat st;
		int err = g.err;

		if (fstat(g.first, &st) == 0) {
			g.undo = true;
			g.first_ino = st.st_ino;
			g.err = 0;
			group_walk(&g, rw_ufd(r->fs, root));
		}
		cfs_log(r->fs, LOG_ERR, "cannot copy up '%s', a member of a hard-link group of %u "
			"names: %s%s", in->name ? in->name : "/", v->nlink, strerrordesc_np(-err),
			g.undo && !g.err ? " (the links made were taken back)" : "");
		g.err = err;
	}
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
	in->rw->dev00 = rw_node_dev00(v);
	return 0;
}

/*
 * A directory inode made when the directory was only the image's, whose
 * upper copy a group copy-up made since: found by its parent's.
 */
void rw_refresh_upper(struct rw_req *r, struct cfs_inode *p, unsigned depth)
{
	struct cfs_inode *pp;
	int fd;

	if (p->rw->upper || p->rw->seen_gen == r->fs->upper_gen || p->type != CAIRN_NODE_DIR ||
	    p->rw->unlinked || p->ino == FUSE_ROOT_ID || depth > CAIRN_DEPTH_MAX)
		return;
	p->rw->seen_gen = r->fs->upper_gen;
	pp = cfs_inode_find(r->fs, p->parent);
	if (!pp)
		return;
	rw_refresh_upper(r, pp, depth + 1);
	if (!pp->rw->upper)
		return;
	fd = openat(rw_ufd(r->fs, pp), p->name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		adopt(r, p, fd);
}

/* Gives in an upper object (metadata only for a file). */
int rw_copy_up(struct rw_req *r, struct cfs_inode *in)
{
	struct cairn_node_view v;
	struct cfs_inode *p;
	int ret, fd;

	rw_refresh_upper(r, in, 0);
	if (in->rw->upper)
		return 0;
	if (in->rw->lower == CFS_LOWER_NONE)
		return -EIO; /* neither upper nor image: cannot be */
	ret = cfs_node_get(r->fs, r->t, &in->node, &v);
	if (ret)
		return ret;
	if (in->rw->unlinked) {
		/* open but nameless: an anonymous copy in work/ */
		char tmp[32], oname[40];

		if (v.type != CAIRN_NODE_REG)
			return -ENOENT;
		cfs_upper_tmpname(r->fs->upper, tmp);
		fd = make_copy(r, &in->node, &v, tmp, in->name);
		if (fd < 0)
			return fd;
		rw_install(r->fs, in, fd);
		/* kept by its orphan name while the kernel holds it (rw-internal.h), or by its fds */
		rw_orphan_name(in, oname);
		in->rw->orphan = in->rw->fh && in->rw->upper_ino &&
				 renameat(r->fs->upper->work_fd, tmp, r->fs->upper->work_fd, oname) == 0;
		if (!in->rw->orphan)
			unlinkat(r->fs->upper->work_fd, tmp, 0);
		in->rw->lower = CFS_LOWER_PINNED;
		in->rw->lower_len = v.size;
		in->rw->metacopy = true;
		return 0;
	}
	if (v.type != CAIRN_NODE_DIR && v.nlink > 1)
		return copy_up_group(r, in, &v);
	p = cfs_inode_find(r->fs, in->parent);
	if (!p)
		return -ESTALE;
	ret = rw_copy_up(r, p);
	if (ret)
		return ret;
	fd = copy_up_at(r, rw_ufd(r->fs, p), in->name, &in->node, &v);
	if (fd < 0)
		return fd;
	adopt(r, in, fd);
	in->rw->no_xattrs = v.nxattr == 0;
	in->rw->dev00 = rw_node_dev00(&v);
	if (v.type != CAIRN_NODE_DIR) {
		in->rw->lower = v.type == CAIRN_NODE_REG ? CFS_LOWER_PINNED : CFS_LOWER_NONE;
		in->rw->lower_len = v.size;
		in->rw->metacopy = v.type == CAIRN_NODE_REG;
	}
	return 0;
}

/* Opens in's data for reading and writing (once, while the budget keeps it). */
int rw_data_fd(struct cfs *fs, struct cfs_inode *in)
{
	char path[32];
	int fd, ufd;

	in->rw->used = fs->fds.gen;
	if (in->rw->dfd >= 0)
		return in->rw->dfd;
	ufd = rw_ufd(fs, in);
	if (ufd < 0)
		return -errno;
	fd = open(cfs_fdpath(ufd, path), O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rw_set_dfd(fs, in, fd);
	return in->rw->dfd;
}

/*
 * Gives a file its own data: copied up, then (if metacopy) the image's
 * bytes written into it, fsync'd, and only then the mark removed. With
 * truncate, the data is dropped instead of copied (an O_TRUNC open).
 */
int rw_copy_up_data(struct rw_req *r, struct cfs_inode *in, bool truncate)
{
	struct cairn_content_view cv;
	struct cairn_node_view v;
	char path[32];
	int ret = rw_copy_up(r, in), fd;

	if (ret)
		return ret;
	if (in->type != CAIRN_NODE_REG)
		return 0;
	fd = rw_data_fd(r->fs, in);
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
		ret = cfs_node_get(r->fs, r->t, &in->node, &v);
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
			if (r->t->fetched) /* a lazy file: its next chunks are fetched meanwhile */
				cfs_chunks_hint(r->t, &cv, i);
			{
				uint64_t n = (e.end < in->rw->lower_len ? e.end : in->rw->lower_len) -
					     e.start;

				if ((uint64_t)ch->len != e.end - e.start ||
				    pwrite(fd, ch->data, n, (off_t)e.start) != (ssize_t)n)
					ret = -EIO;
			}
			cfs_chunk_unref(r->fs->d->cache, ch);
		}
		if (!ret) {
			struct timespec ts[2] = { before.st_atim, before.st_mtim };

			if (futimens(fd, ts) < 0 || fdatasync(fd) < 0)
				ret = -errno;
		}
		if (ret)
			return ret;
	}
	if (removexattr(cfs_fdpath(rw_ufd(r->fs, in), path), CFS_XATTR_METACOPY) < 0 && errno != ENODATA)
		return -errno;
	in->rw->metacopy = false;
	return 0;
}

/* A metacopy file keeps only its first n bytes from the image from now on. */
int rw_set_lower_len(struct cfs *fs, struct cfs_inode *in, uint64_t n)
{
	char path[32], val[24];

	if (n >= in->rw->lower_len)
		return 0;
	snprintf(val, sizeof(val), "%llu", (unsigned long long)n);
	if (setxattr(cfs_fdpath(rw_ufd(fs, in), path), CFS_XATTR_METACOPY, val, strlen(val), 0) < 0)
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

