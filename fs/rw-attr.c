/* SPDX-License-Identifier: MIT */
/*
 * rw-attr.c - attributes and xattrs on a writable mount: setattr (chmod,
 * chown, utimens, truncate), readlink, and the xattr handlers.
 *
 * An entry only the image has answers from its node; a change copies it
 * up first (metadata only, see rw-copyup.c). A container's xattrs in
 * cairn's own namespace are stored escaped (upper.h), so none can forge
 * a marker.
 */
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rw-internal.h"

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6, one number on every architecture; Debian 12's headers predate it */
#endif

/* chmod of an upper object: through its data fd, fchmodat2, or /proc. */
static int set_mode(struct cfs *fs, struct cfs_inode *in, mode_t mode)
{
	char path[32];

	if (in->rw->dfd >= 0)
		return fchmod(in->rw->dfd, mode);
	if (syscall(SYS_fchmodat2, rw_ufd(fs, in), "", mode, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
	return chmod(cfs_fdpath(rw_ufd(fs, in), path), mode);
}

void rw_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct stat st;
	char path[32];
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
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
			ret = rw_copy_up_data(&r, in, true);
		} else {
			/* a metacopy file keeps its image part: only what is cut goes */
			ret = rw_copy_up(&r, in);
			if (!ret && rw_data_fd(r.fs, in) < 0)
				ret = -EIO;
			if (!ret && in->rw->metacopy)
				ret = rw_set_lower_len(r.fs, in, (uint64_t)attr->st_size);
		}
		if (!ret && ftruncate(in->rw->dfd, attr->st_size) < 0)
			ret = -errno;
	} else {
		ret = rw_copy_up(&r, in);
	}
	if (ret)
		goto out;
	cfs_fdpath(rw_ufd(r.fs, in), path);
	/*
	 * Nothing to set is chown(path, -1, -1) (the kernel sends no ctime
	 * without writeback caching): a kernel filesystem still updates ctime,
	 * and chown(-1, -1) on the upper object does exactly that.
	 */
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID) ||
	    !(to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
			FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
		uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(rw_ufd(r.fs, in), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			goto out;
		}
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && in->type != CAIRN_NODE_LNK &&
	    set_mode(r.fs, in, attr->st_mode & 07777) < 0) {
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
		if (utimensat(rw_ufd(r.fs, in), "", ts, AT_EMPTY_PATH) < 0 &&
		    (errno != EINVAL || utimensat(AT_FDCWD, path, ts, 0) < 0)) {
			ret = -errno;
			goto out;
		}
	}
	ret = rw_inode_stat(&r, in, &st);
out:
	rw_req_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_attr(req, &st, r.fs->timeout);
}

void rw_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct cairn_node_view v;
	char target[PATH_MAX + 1];
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (!in) {
		ret = -ESTALE;
	} else if (in->rw->upper) {
		ssize_t n = readlinkat(rw_ufd(r.fs, in), "", target, sizeof(target) - 1);

		if (n < 0)
			ret = -errno;
		else
			target[n] = '\0';
	} else if (!(ret = cfs_node_get(r.fs, r.t, &in->node, &v))) {
		if (v.type != CAIRN_NODE_LNK) {
			ret = -EINVAL;
		} else {
			memcpy(target, v.target, v.target_len);
			target[v.target_len] = '\0';
		}
	}
	rw_req_end(&r);
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

void rw_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct rw_req r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rw_req_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (!in || !un) {
		rw_req_end(&r);
		fuse_reply_err(req, in ? ENODATA : ESTALE);
		return;
	}
	if (in->rw->upper && in->rw->no_xattrs) {
		/* asked on every write (security.capability): answered without a syscall */
		rw_req_end(&r);
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (in->rw->upper) {
		char *buf = malloc(XATTR_SIZE_MAX);
		ssize_t n = buf ? getxattr(cfs_fdpath(rw_ufd(r.fs, in), path), un, buf, XATTR_SIZE_MAX)
				: -1;

		rw_req_end(&r);
		if (n < 0)
			fuse_reply_err(req, buf ? errno : ENOMEM);
		else
			cfs_reply_xattr(req, buf, (size_t)n, size);
		free(buf);
		return;
	}
	{
		struct cairn_node_view v;
		struct cairn_xattr x;

		ret = cfs_node_get(r.fs, r.t, &in->node, &v);
		if (!ret)
			ret = cairn_xattr_get(&v, name, &x);
		if (ret) {
			rw_req_end(&r);
			fuse_reply_err(req, ret == -ENODATA ? ENODATA : EIO);
			return;
		}
		cfs_reply_xattr(req, x.value, x.value_len, size);
		rw_req_end(&r);
	}
}

void rw_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct cairn_buf list = { 0 };
	char path[32];
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (!in) {
		ret = -ESTALE;
	} else if (in->rw->upper && in->rw->no_xattrs) {
		ret = 0;
	} else if (in->rw->upper) {
		char *raw = malloc(XATTR_LIST_MAX);
		ssize_t n = raw ? listxattr(cfs_fdpath(rw_ufd(r.fs, in), path), raw, XATTR_LIST_MAX) : -1;

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

		ret = cfs_node_get(r.fs, r.t, &in->node, &v);
		while (!ret && (ret = cairn_xattr_next(&v, &off, &x)) == 0)
			if (cairn_buf_append(&list, x.name, x.name_len) ||
			    cairn_buf_append(&list, "", 1))
				ret = -ENOMEM;
		if (ret == -ENOENT)
			ret = 0;
	}
	rw_req_end(&r);
	if (!ret && list.len)
		list.len = cfs_list_hide_trusted(req, (char *)list.data, list.len);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		cfs_reply_xattr(req, list.data, list.len, size);
	cairn_buf_release(&list);
}

void rw_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct rw_req r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rw_req_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = !in ? -ESTALE : !un ? -ERANGE : rw_copy_up(&r, in);
	if (!ret && setxattr(cfs_fdpath(rw_ufd(r.fs, in), path), un, value, size, flags) < 0)
		ret = -errno;
	if (!ret)
		in->rw->no_xattrs = false;
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

void rw_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct rw_req r;
	struct cfs_inode *in;
	char xb[XNAME_BUF], path[32];
	const char *un = cfs_xattr_to_upper(name, xb, sizeof(xb));
	int ret;

	if (!xattr_known(name)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	ret = rw_req_begin(req, &r);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = !in ? -ESTALE : !un ? -ENODATA : 0;
	if (!ret && !in->rw->upper) {
		/* absent in the image: no copy-up just to fail */
		struct cairn_node_view v;
		struct cairn_xattr x;

		ret = cfs_node_get(r.fs, r.t, &in->node, &v);
		if (!ret && cairn_xattr_get(&v, name, &x))
			ret = -ENODATA;
	}
	if (!ret)
		ret = rw_copy_up(&r, in);
	if (!ret && removexattr(cfs_fdpath(rw_ufd(r.fs, in), path), un) < 0)
		ret = -errno;
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

