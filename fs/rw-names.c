/* SPDX-License-Identifier: MIT */
/*
 * rw-names.c - the handlers that change names on a writable mount:
 * create, mknod, mkdir, symlink, link, unlink, rmdir and rename.
 *
 * New entries are made with O_EXCL in place, or in work/ and swapped in
 * when they replace a whiteout or need a marker. A name the image still
 * has is hidden by a whiteout (a char 0/0 device, made with
 * RENAME_WHITEOUT where the filesystem can); a renamed image directory
 * carries a redirect to its node, so nothing of it is copied.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rw-internal.h"

/* ---- creating entries ---- */

/* The owner a new entry gets: the caller, or a set-gid directory's group. */
static void new_owner(fuse_req_t req, struct rw_req *r, struct cfs_inode *p, uid_t *uid, gid_t *gid,
		      bool *setgid)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct stat pst;

	*uid = c->uid;
	*gid = c->gid;
	*setgid = false;
	(void)r;
	if (fstat(rw_ufd(r->fs, p), &pst) == 0 && (pst.st_mode & S_ISGID)) {
		*gid = pst.st_gid;
		*setgid = true;
	}
}

/*
 * Puts the object made as tmp in work/ at name in p: over a whiteout
 * (atomically) or where nothing is. Returns 0 or -errno.
 */
static int place(struct rw_req *r, struct cfs_inode *p, const char *tmp, const char *name, bool isdir)
{
	struct cfs_upper *u = r->fs->upper;
	struct stat st;

	if (fstatat(rw_ufd(r->fs, p), name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!cfs_is_whiteout(&st))
			return -EEXIST;
		if (isdir) {
			/* a directory cannot replace a device: swap, then drop the whiteout */
			if (renameat2(u->work_fd, tmp, rw_ufd(r->fs, p), name, RENAME_EXCHANGE) < 0)
				return -errno;
			unlinkat(u->work_fd, tmp, 0);
			return 0;
		}
		return renameat(u->work_fd, tmp, rw_ufd(r->fs, p), name) < 0 ? -errno : 0;
	}
	return renameat2(u->work_fd, tmp, rw_ufd(r->fs, p), name, RENAME_NOREPLACE) < 0 ? -errno : 0;
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
static struct cfs_inode *make_entry(fuse_req_t req, struct rw_req *r, struct cfs_inode *p,
				    const char *name, mode_t mode, dev_t rdev, const char *target,
				    int *err)
{
	struct cfs_upper *u = r->fs->upper;
	struct cfs_inode *in;
	struct rw_entry e;
	uid_t uid;
	gid_t gid;
	bool setgid, opaque;
	int ret, fd = -1;

	ret = rw_resolve(r, p, name, &e);
	if (ret == 0) {
		rw_entry_release(&e);
		*err = -EEXIST;
		return NULL;
	}
	if (ret != -ENOENT) {
		*err = ret;
		return NULL;
	}
	ret = rw_copy_up(r, p);
	if (ret) {
		*err = ret;
		return NULL;
	}
	new_owner(req, r, p, &uid, &gid, &setgid);
	/* where the image has something, a new directory shows none of it */
	opaque = S_ISDIR(mode) && e.below;
	if (!e.whiteout && !opaque) {
		/* nothing to replace, nothing to mark: made in place, atomically by O_EXCL */
		ret = new_at(rw_ufd(r->fs, p), name, mode, rdev, target, uid, gid, setgid, false, &fd);
		if (ret && ret != -EEXIST)
			unlinkat(rw_ufd(r->fs, p), name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
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
	e.ufd = openat(rw_ufd(r->fs, p), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (e.ufd < 0 || fstat(e.ufd, &e.st) < 0) {
		*err = -errno;
		if (e.ufd >= 0)
			close(e.ufd);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	e.type = rw_st_type(e.st.st_mode);
	e.kind = CFS_LOWER_NONE;
	e.opaque = opaque;
	e.no_xattrs = true;
	in = rw_entry_ref(r, p, name, &e);
	if (!in) {
		if (fd >= 0)
			close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	if (fd >= 0)
		rw_set_dfd(r->fs, in, fd);
	return in;
}

/* mknod, mkdir and symlink: an entry made as the caller, answered with its inode. */
static void make_and_reply(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			   dev_t rdev, const char *target)
{
	struct rw_req r;
	struct cfs_inode *p, *in = NULL;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = cfs_inode_find(r.fs, parent);
	if (!p)
		ret = -ESTALE;
	else if (S_ISCHR(mode) && rdev == 0)
		ret = -EPERM; /* the upper's whiteout: a container cannot make one by hand */
	else
		in = make_entry(req, &r, p, name, mode, rdev, target, &ret);
	if (!in) {
		rw_req_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	rw_reply_entry(req, &r, in);
}

void rw_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	make_and_reply(req, parent, name, mode, rdev, NULL);
}

void rw_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_and_reply(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

void rw_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	make_and_reply(req, parent, name, S_IFLNK | 0777, 0, link);
}

void rw_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct fuse_entry_param e = { 0 };
	struct rw_req r;
	struct cfs_inode *p, *in;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = cfs_inode_find(r.fs, parent);
	in = p ? make_entry(req, &r, p, name, S_IFREG | (mode & 07777), 0, NULL, &ret) : NULL;
	if (!p)
		ret = -ESTALE;
	if (in)
		ret = rw_inode_stat(&r, in, &e.attr);
	if (ret) {
		if (in)
			cfs_inode_forget(r.fs, in->ino, 1);
		rw_req_end(&r);
		fuse_reply_err(req, -ret);
		return;
	}
	e.ino = in->ino;
	e.attr_timeout = e.entry_timeout = r.fs->timeout;
	fi->fh = 0;
	fi->keep_cache = 1;
	/*
	 * Nothing is pinned for the open file: its fds are the budget's like
	 * any other's (a read or write pins them for itself, io_pin()), or a
	 * container holding the files it makes open would take every fd of
	 * the daemon, the other mounts' too.
	 */
	rw_req_end(&r);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		cfs_inode_forget(r.fs, in->ino, 1);
}

void rw_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rw_req r;
	struct cfs_inode *in, *p;
	struct rw_entry e;
	char tmp[32];
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	p = cfs_inode_find(r.fs, newparent);
	if (!in || !p) {
		ret = -ESTALE;
		goto fail;
	}
	ret = rw_resolve(&r, p, newname, &e);
	if (ret == 0) {
		rw_entry_release(&e);
		ret = -EEXIST;
		goto fail;
	}
	if (ret != -ENOENT)
		goto fail;
	ret = rw_copy_up(&r, in);
	if (!ret)
		ret = rw_copy_up(&r, p);
	if (ret)
		goto fail;
	cfs_upper_tmpname(r.fs->upper, tmp);
	if (linkat(rw_ufd(r.fs, in), "", r.fs->upper->work_fd, tmp, AT_EMPTY_PATH) < 0) {
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
	rw_reply_entry(req, &r, in);
	return;
fail:
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

/* ---- removing entries ---- */

/* Is the merged directory in empty? Fills *has_whiteouts for its upper part. */
static int merged_empty(struct rw_req *r, struct cfs_inode *in)
{
	struct cairn_node_view v;
	DIR *d;
	int fd;

	if (in->rw->upper) {
		fd = openat(rw_ufd(r->fs, in), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
	if (cfs_node_get(r->fs, r->t, &in->node, &v))
		return -EIO;
	for (uint32_t i = 0; i < v.nentries; i++) {
		struct cairn_dirent de;
		char name[CAIRN_NAME_MAX + 1];
		struct stat st;

		if (cairn_dir_entry(&v, i, &de))
			return -EIO;
		memcpy(name, de.name, de.name_len);
		name[de.name_len] = '\0';
		if (!in->rw->upper || fstatat(rw_ufd(r->fs, in), name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
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

/* What was taken out to work/ as tmp goes, or stays there as keep (an orphan directory: *kept). */
static int removed(struct cfs_upper *u, const char *tmp, bool isdir, const char *keep, bool *kept)
{
	if (keep && renameat(u->work_fd, tmp, u->work_fd, keep) == 0) {
		*kept = true;
		return 0;
	}
	return unlinkat(u->work_fd, tmp, isdir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
}

/*
 * Takes name out of upper directory pufd, leaving a whiteout when the image
 * has an entry there (one rename where the filesystem can). What the
 * kernel still holds is moved to work/ as keep instead (its orphan name)
 * where it can be: then *kept.
 */
static int remove_upper(struct rw_req *r, int pufd, const char *name, bool isdir, bool whiteout,
			const char *keep, bool *kept)
{
	struct cfs_upper *u = r->fs->upper;
	char tmp[32];

	*kept = false;
	if (!whiteout && keep && renameat(pufd, name, u->work_fd, keep) == 0) {
		*kept = true;
		return 0;
	}
	if (!whiteout)
		return unlinkat(pufd, name, isdir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	cfs_upper_tmpname(u, tmp);
	if (u->rename_whiteout &&
	    renameat2(pufd, name, u->work_fd, tmp, RENAME_WHITEOUT) == 0)
		return removed(u, tmp, isdir, keep, kept);
	/* a whiteout made aside, then swapped in */
	if (mknodat(u->work_fd, tmp, S_IFCHR | 0000, 0) < 0)
		return -errno;
	if (renameat2(u->work_fd, tmp, pufd, name, RENAME_EXCHANGE) < 0) {
		int e = errno;

		unlinkat(u->work_fd, tmp, 0);
		return -e;
	}
	return removed(u, tmp, isdir, keep, kept);
}

/* An orphan name (of a file) made for in that is not needed after all. */
static void orphan_unlink(struct rw_req *r, struct cfs_inode *in, bool orphan)
{
	char oname[40];

	if (!orphan)
		return;
	rw_orphan_name(in, oname);
	unlinkat(r->fs->upper->work_fd, oname, 0);
}

/*
 * After name stopped leading to in: is in gone (no links left but its
 * orphan name, if it has one: orphan)? A directory is gone; it was kept
 * as an orphan when kept.
 */
static void note_unlinked(struct rw_req *r, struct cfs_inode *in, bool orphan, bool kept)
{
	struct stat st;

	if (in->rw->upper && in->type != CAIRN_NODE_DIR && fstat(rw_ufd(r->fs, in), &st) == 0 &&
	    st.st_nlink > (orphan ? 1u : 0u)) {
		orphan_unlink(r, in, orphan); /* another name leads here still */
		return;
	}
	in->rw->unlinked = true;
	in->rw->orphan = in->type == CAIRN_NODE_DIR ? kept : orphan;
	rw_unkey(r->fs, in);
}
static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, bool isdir)
{
	struct rw_req r;
	struct cfs_inode *p, *in = NULL;
	struct rw_entry e;
	char keep[40] = "";
	bool kept = false;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	p = cfs_inode_find(r.fs, parent);
	ret = p ? rw_resolve(&r, p, name, &e) : -ESTALE;
	if (ret)
		goto out;
	if (isdir != (e.type == CAIRN_NODE_DIR)) {
		ret = isdir ? -ENOTDIR : -EISDIR;
		goto out_e;
	}
	in = rw_inode_at(&r, p, name, &e);
	if (!isdir && e.ufd < 0 && e.v.nlink > 1 && in) {
		/* a member of an image hard-link group: the others must see the count drop */
		rw_entry_release(&e);
		ret = rw_copy_up(&r, in);
		if (!ret)
			ret = rw_resolve(&r, p, name, &e);
		if (ret)
			goto out;
	}
	if (isdir) {
		struct cfs_inode probe = { .type = CAIRN_NODE_DIR, .node = e.node };
		struct cfs_rw prw = { .upper = e.ufd >= 0, .ufd = e.ufd, .dfd = -1, .lower = e.kind };

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
	ret = rw_copy_up(&r, p);
	if (ret)
		goto out_e;
	if (in && in->rw->upper && rw_ufd(r.fs, in) < 0) {
		/* held open from here: once unlinked, its handle no longer opens it (rw-fds.c) */
		ret = -errno;
		goto out_e;
	}
	/* what the kernel still holds stays reachable by handle: moved to work/ as an orphan */
	if (in && in->rw->upper && in->rw->upper_ino && r.fs->fds.handles)
		rw_orphan_name(in, keep);
	if (e.ufd >= 0) {
		ret = remove_upper(&r, rw_ufd(r.fs, p), name, isdir, e.below, keep[0] ? keep : NULL,
				   &kept);
	} else {
		/* only the image's: a whiteout hides it */
		ret = mknodat(rw_ufd(r.fs, p), name, S_IFCHR | 0000, 0) < 0 ? -errno : 0;
	}
	if (!ret && in)
		note_unlinked(&r, in, kept, kept);
out_e:
	rw_entry_release(&e);
out:
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

void rw_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, false);
}

void rw_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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
static int prepare_move(struct rw_req *r, struct cfs_inode *in, bool below_dir)
{
	char path[32], hex[CAIRN_ID_HEX_LEN + 1];

	if (in->type != CAIRN_NODE_DIR)
		return 0;
	cfs_fdpath(rw_ufd(r->fs, in), path);
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

void rw_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags)
{
	struct cfs_upper *u;
	struct rw_req r;
	struct cfs_inode *p, *np, *src = NULL, *dst = NULL;
	struct rw_entry se, de;
	char keep[40];
	bool dst_exists, orphan = false, kept = false;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	u = r.fs->upper;
	memset(&de, 0, sizeof(de));
	de.ufd = -1;
	p = cfs_inode_find(r.fs, parent);
	np = cfs_inode_find(r.fs, newparent);
	if (!p || !np) {
		ret = -ESTALE;
		goto out;
	}
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		ret = -EINVAL;
		goto out;
	}
	ret = rw_resolve(&r, p, name, &se);
	if (ret)
		goto out;
	ret = rw_resolve(&r, np, newname, &de);
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
		struct cfs_inode *a = rw_inode_at(&r, p, name, &se), *b = rw_inode_at(&r, np, newname, &de);

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
		struct cfs_rw prw = { .upper = de.ufd >= 0, .ufd = de.ufd, .dfd = -1,
				       .lower = de.kind };

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
	src = rw_inode_at(&r, p, name, &se);
	if (dst_exists)
		dst = rw_inode_at(&r, np, newname, &de);
	if (!src) {
		ret = -ESTALE; /* the kernel looked it up before renaming */
		goto out_de;
	}
	if (dst && de.ufd < 0 && de.type != CAIRN_NODE_DIR && de.v.nlink > 1 &&
	    !(flags & RENAME_EXCHANGE)) {
		/* replacing a member of an image hard-link group: the others must see the count drop */
		rw_entry_release(&de);
		ret = rw_copy_up(&r, dst);
		if (!ret)
			ret = rw_resolve(&r, np, newname, &de);
		if (ret)
			goto out_se;
	}
	ret = rw_copy_up(&r, p);
	if (!ret)
		ret = rw_copy_up(&r, np);
	if (!ret)
		ret = rw_copy_up(&r, src);
	if (!ret && (flags & RENAME_EXCHANGE)) {
		ret = dst ? rw_copy_up(&r, dst) : -ESTALE;
		if (!ret)
			ret = prepare_move(&r, dst, se.below && se.lower.type == CAIRN_NODE_DIR);
	}
	if (!ret)
		ret = prepare_move(&r, src, de.below && de.lower.type == CAIRN_NODE_DIR);
	if (ret)
		goto out_de;
	if (dst && dst->rw->upper && rw_ufd(r.fs, dst) < 0) {
		ret = -errno; /* held open: replaced, its handle would no longer open it */
		goto out_de;
	}
	/* a file replaced while the kernel holds it: an orphan in work/ (a directory: below) */
	orphan = dst && !(flags & RENAME_EXCHANGE) && rw_orphan_link(&r, dst);
	if (dst_exists && !(flags & RENAME_EXCHANGE) && de.type == CAIRN_NODE_DIR && de.ufd >= 0) {
		ret = clear_whiteouts(de.ufd);
		if (ret)
			goto out_de;
	}

	if (flags & RENAME_EXCHANGE) {
		if (renameat2(rw_ufd(r.fs, p), name, rw_ufd(r.fs, np), newname, RENAME_EXCHANGE) < 0)
			ret = -errno;
	} else {
		struct stat st;
		bool wh_at_dst = fstatat(rw_ufd(r.fs, np), newname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				 cfs_is_whiteout(&st);
		bool need_wh = se.below; /* the image's entry at the old name must stay hidden */

		if (dst && de.type == CAIRN_NODE_DIR && de.ufd >= 0 && dst->rw->upper &&
		    dst->rw->upper_ino && r.fs->fds.handles) {
			/*
			 * A directory over one the kernel holds: swapped, then the
			 * old one (empty) moved to work/ as its orphan, so that it
			 * stays reachable by handle (rw-internal.h).
			 */
			rw_orphan_name(dst, keep);
			if (renameat2(rw_ufd(r.fs, p), name, rw_ufd(r.fs, np), newname, RENAME_EXCHANGE) < 0)
				ret = -errno;
			else
				ret = remove_upper(&r, rw_ufd(r.fs, p), name, true, need_wh, keep, &kept);
		} else if (wh_at_dst && se.type == CAIRN_NODE_DIR) {
			/* a directory cannot replace the whiteout device: swap them */
			if (renameat2(rw_ufd(r.fs, p), name, rw_ufd(r.fs, np), newname, RENAME_EXCHANGE) < 0)
				ret = -errno;
			else if (!need_wh && unlinkat(rw_ufd(r.fs, p), name, 0) < 0)
				ret = -errno;
		} else if (need_wh && u->rename_whiteout) {
			if (renameat2(rw_ufd(r.fs, p), name, rw_ufd(r.fs, np), newname, RENAME_WHITEOUT) < 0)
				ret = -errno;
		} else {
			if (renameat(rw_ufd(r.fs, p), name, rw_ufd(r.fs, np), newname) < 0)
				ret = -errno;
			else if (need_wh && mknodat(rw_ufd(r.fs, p), name, S_IFCHR | 0000, 0) < 0)
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
		note_unlinked(&r, dst, orphan, kept);
	}
out_de:
	if (ret && orphan)
		orphan_unlink(&r, dst, orphan);
	rw_entry_release(&de);
out_se:
	rw_entry_release(&se);
out:
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

