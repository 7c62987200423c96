/* SPDX-License-Identifier: MIT */
/*
 * rw-data.c - file data on a writable mount: open, read, write, fsync,
 * fallocate, lseek.
 *
 * A file's bytes are the image's (read through the chunk cache), the
 * upper file's (spliced from its data fd), or both for a metacopy file
 * with a length: the image's below that length, its own above. A write
 * below it copies the image's data up first (rw_copy_up_data()).
 */
#include <fcntl.h>
#include <unistd.h>

#include "rw-internal.h"

/* Reads len bytes at off of node into buf (below its size; holes are zeros). */
static int read_lower(struct rw_req *r, const struct cairn_id *node, uint64_t off, size_t len,
		      uint8_t *buf)
{
	struct cairn_content_view cv;
	struct cairn_node_view v;
	uint64_t end = off + len;
	int ret = cfs_node_get(r->fs, r->t, node, &v);

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
		cfs_chunk_unref(r->fs->d->cache, ch);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * No opens: the first OPEN is answered ENOSYS, and the kernel sends none
 * after it, nor their RELEASE: two round trips saved per open() of a file,
 * which package managers make by the ten thousand (/etc/passwd for every
 * file dpkg unpacks). What an open did happens later: O_TRUNC arrives as
 * a SETATTR of the size (no atomic_o_trunc), a copy-up waits for the first
 * write or change, and the data fd is opened by the first read or write
 * that needs it. Files made by CREATE are still opened, but nothing waits
 * for their RELEASE: once an OPEN was answered ENOSYS, the kernel (6.18,
 * seen in its fuse_request_send trace) sends none for them either.
 */
void rw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

/*
 * The data fd of in, pinned against the fd budget until io_unpin(): -1
 * when its data is the image's (with metacopy, unless any: fsync wants
 * whatever the upper file holds), or -errno. Reads and writes use it
 * without ns_lock: the pin (in->rw->opens, taken under itable_lock, where
 * the budget looks before it closes anything) keeps it open.
 */
static int io_pin(struct cfs *fs, struct cfs_inode *in, bool any)
{
	int fd;

	pthread_mutex_lock(&fs->itable_lock);
	fd = in->rw->metacopy && !any ? -1 : in->rw->dfd;
	if (fd >= 0)
		atomic_fetch_add(&in->rw->opens, 1);
	pthread_mutex_unlock(&fs->itable_lock);
	if (fd >= 0 || !in->rw->upper || (in->rw->metacopy && !any))
		return fd;
	pthread_mutex_lock(&fs->ns_lock);
	fs->fds.gen++; /* this request's fds stay through the trim below */
	if (in->rw->upper && (any || !in->rw->metacopy)) {
		fd = rw_data_fd(fs, in);
		if (fd >= 0)
			atomic_fetch_add(&in->rw->opens, 1);
	}
	rw_fds_trim(fs);
	pthread_mutex_unlock(&fs->ns_lock);
	return fd;
}

/* Before the reply: once it is sent, the kernel may forget in (freed by another thread). */
static void io_unpin(struct cfs_inode *in, int fd)
{
	if (fd >= 0)
		atomic_fetch_sub(&in->rw->opens, 1);
}

/*
 * A read of a metacopy file reaching past its image part: the image's
 * bytes below lower_len, the file's own above. 1 when it replied, 0 when
 * the image alone answers.
 */
static int read_split(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off)
{
	struct rw_req r;
	struct cfs_inode *in;
	uint8_t *buf = NULL;
	uint64_t lower_len;
	ssize_t got = 0;
	int ret = rw_req_begin(req, &r), fd;

	if (ret) {
		fuse_reply_err(req, -ret);
		return 1;
	}
	in = cfs_inode_find(r.fs, ino);
	if (!in || !in->rw->metacopy || !in->rw->upper) {
		rw_req_end(&r);
		return 0; /* copied up since: the caller looks again */
	}
	lower_len = in->rw->lower_len;
	if ((uint64_t)off + size <= lower_len) {
		rw_req_end(&r);
		return 0;
	}
	fd = rw_data_fd(r.fs, in);
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
	rw_req_end(&r);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, (const char *)buf, (size_t)got);
	free(buf);
	return 1;
}

void rw_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	int fd = in ? io_pin(fs, in, false) : -ESTALE;
	ssize_t got;
	char *buf;

	/* a metacopy file may be read past its image part; an image file never is (no ns_lock) */
	if (fd == -1 && atomic_load(&in->rw->metacopy)) {
		if (read_split(req, ino, size, off))
			return;
		fd = io_pin(fs, in, false);
	}
	if (fd == -1) {
		cfs_read_image(req, ino, size, off, fi);
		return;
	}
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	/*
	 * Read here, not spliced by the reply: the pin goes before the reply
	 * (once it is sent, the kernel may close the file and forget in,
	 * which another thread then frees); libfuse's reply without splice
	 * (a shared daemon's) does this same read into a buffer.
	 */
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	buf = malloc(size ? size : 1);
	got = buf ? pread(fd, buf, size, off) : -1;
	if (!buf)
		errno = ENOMEM;
	if (got < 0)
		got = -errno;
	io_unpin(in, fd);
	if (got < 0)
		fuse_reply_err(req, (int)-got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
	free(buf);
}

void rw_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
		  struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	int fd = in ? io_pin(fs, in, false) : -ESTALE;
	ssize_t n = 0;

	if (fd == -1) {
		/*
		 * Not copied up yet (no OPEN did it), or a metacopy file: the
		 * metadata first (an image file becomes metacopy, its length the
		 * image's); then a write past the image part (an append) goes
		 * into the file as it is, one below needs the image's data first.
		 */
		struct rw_req r;
		int ret = rw_req_begin(req, &r);

		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		ret = rw_copy_up(&r, in);
		if (!ret && in->rw->metacopy && (uint64_t)off < in->rw->lower_len)
			ret = rw_copy_up_data(&r, in, false);
		fd = ret ? ret : rw_data_fd(fs, in);
		if (fd >= 0) {
			/* under the lock: a truncation must not move lower_len meanwhile */
			out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			out.buf[0].fd = fd;
			out.buf[0].pos = off;
			n = fuse_buf_copy(&out, in_buf, 0);
		}
		rw_req_end(&r);
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
	io_unpin(in, fd);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* The release of a file made by CREATE: nothing was pinned for it (rw_create()). */
void rw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

void rw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	/* the data fd even of a metacopy file: what it wrote is to be synced */
	int fd = in ? io_pin(fs, in, true) : -ESTALE, ret = 0;

	if (fd >= 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		ret = errno;
	else if (fd < -1)
		ret = -fd;
	io_unpin(in, fd);
	fuse_reply_err(req, ret);
}

/*
 * Readies the upper file for fallocate(mode, off, len) without copying the
 * image's data where the result needs none. A metacopy file (its first
 * lower_len bytes still the image's) keeps them by reference: allocating
 * changes no byte; punching a hole or zeroing a range in the file's own
 * part, or one reaching past the end of the image part, shrinks that part
 * to the range's start (the upper's bytes there are a hole already). Only
 * a hole or zeroed range strictly inside the image part copies the data.
 */
static int fallocate_prepare(struct rw_req *r, struct cfs_inode *in, int mode, off_t off,
			     off_t len)
{
	struct cairn_node_view v;
	struct stat st;
	uint64_t image_end;
	int ret = rw_copy_up(r, in);

	if (ret)
		return ret;
	if (in->type != CAIRN_NODE_REG)
		return -ENODEV;
	if (rw_data_fd(r->fs, in) < 0)
		return -EIO;
	if (!in->rw->metacopy || !(mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)))
		return 0;
	if (fstat(in->rw->dfd, &st) < 0)
		return -errno;
	ret = cfs_node_get(r->fs, r->t, &in->node, &v);
	if (ret)
		return ret;
	/* the image part: lower_len ("y": all of the node), as far as the file reaches */
	image_end = in->rw->lower_len < v.size ? in->rw->lower_len : v.size;
	if (image_end > (uint64_t)st.st_size)
		image_end = (uint64_t)st.st_size;
	if ((uint64_t)off >= image_end)
		return 0;
	if ((uint64_t)off + (uint64_t)len >= image_end)
		return rw_set_lower_len(r->fs, in, (uint64_t)off);
	return rw_copy_up_data(r, in, false);
}

void rw_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		  struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = in ? fallocate_prepare(&r, in, mode, offset, length) : -ESTALE;
	if (!ret && fallocate(in->rw->dfd, mode, offset, length) < 0)
		ret = -errno;
	rw_req_end(&r);
	fuse_reply_err(req, -ret);
}

void rw_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	      struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	int fd = in ? io_pin(fs, in, false) : -ESTALE;
	off_t res;

	if (fd == -1 && in->rw->metacopy) {
		/* a file with its own bytes past the image part: its own data first */
		struct rw_req r;
		struct stat st;
		int ret = rw_req_begin(req, &r);

		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		fd = in->rw->metacopy ? rw_data_fd(fs, in) : -1;
		if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size != in->rw->lower_len)
			ret = rw_copy_up_data(&r, in, false);
		rw_req_end(&r);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		fd = io_pin(fs, in, false);
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
		res = -errno;
	io_unpin(in, fd); /* before the reply: after it, in may be forgotten and freed */
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_lseek(req, res);
}
