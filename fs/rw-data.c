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
		cfs_chunk_unref(r->fs->cache, ch);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * No opens: the first OPEN is answered ENOSYS, and the kernel sends none
 * after it, nor their RELEASE (and, without .flush, no FLUSH): three round
 * trips saved per open() of a file, which package managers make by the
 * ten thousand (/etc/passwd for every file dpkg unpacks). What an open
 * did happens later: O_TRUNC arrives as a SETATTR of the size, a copy-up
 * waits for the first write or change, and the data fd is opened by the
 * first read or write that needs it. Files made by CREATE are opened
 * still: their RELEASE comes.
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
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	int fd = in ? io_pin(fs, in, false) : -ESTALE;

	if (fd == -1) {
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
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	io_unpin(in, fd);
}

/*
 * A write to a metacopy file that starts in its image part. With the
 * kernel's writeback cache, an append of one byte comes back as a write
 * of the whole last page, the image's bytes before it included: where the
 * bytes below lower_len are the image's own, only the rest is written (in
 * the file's own part) and nothing is copied. *done is the write's length
 * when it was written here, 0 when the caller writes it (the data copied
 * up first, which is what this returns 0 for, or -errno).
 */
static int write_straddling(struct rw_req *r, struct cfs_inode *in, struct fuse_bufvec *in_buf,
			    off_t off, ssize_t *done)
{
	size_t len = fuse_buf_size(in_buf), below;
	struct fuse_bufvec mem = FUSE_BUFVEC_INIT(len);
	uint8_t *buf = malloc(len), *img = NULL;
	ssize_t n;
	int ret, fd;

	*done = 0;
	below = (uint64_t)off + len <= in->rw->lower_len ? len
							 : (size_t)(in->rw->lower_len - (uint64_t)off);
	if (!buf)
		return -ENOMEM;
	mem.buf[0].mem = buf;
	n = fuse_buf_copy(&mem, in_buf, 0);
	if (n != (ssize_t)len) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	img = malloc(below);
	ret = img ? read_lower(r, &in->node, (uint64_t)off, below, img) : -ENOMEM;
	if (!ret && memcmp(buf, img, below) == 0) {
		/* the image's bytes, unchanged: only what lies past them is written */
		fd = rw_data_fd(r->fs, in);
		if (fd < 0)
			ret = fd;
		else if (len > below &&
			 pwrite(fd, buf + below, len - below, off + (off_t)below) != (ssize_t)(len - below))
			ret = -EIO;
		if (!ret)
			*done = (ssize_t)len;
	} else if (!ret) {
		ret = rw_copy_up_data(r, in, false);
		if (!ret) {
			/* the bytes are consumed: write them from memory */
			fd = rw_data_fd(r->fs, in);
			if (fd < 0)
				ret = fd;
			else if (pwrite(fd, buf, len, off) != (ssize_t)len)
				ret = -EIO;
			else
				*done = (ssize_t)len;
		}
	}
	free(img);
	free(buf);
	return ret;
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
		 * Not copied up, or a metacopy file: a write past its image part
		 * (an append) goes into the file as it is; one below needs the
		 * image's data first.
		 */
		struct rw_req r;
		int ret = rw_req_begin(req, &r);

		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		/* metadata first: an image file becomes metacopy, its length the image's */
		ret = rw_copy_up(&r, in);
		if (!ret && in->rw->metacopy && (uint64_t)off < in->rw->lower_len)
			ret = write_straddling(&r, in, in_buf, off, &n);
		fd = ret ? ret : rw_data_fd(fs, in);
		if (fd >= 0 && n == 0) {
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

void rw_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_inode *in = cfs_inode_find(cfs_of(req), ino);

	if (in && atomic_load(&in->rw->opens) > 0)
		atomic_fetch_sub(&in->rw->opens, 1);
	fuse_reply_err(req, 0);
}

void rw_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct cfs *fs = cfs_of(req);
	struct cfs_inode *in = cfs_inode_find(fs, ino);
	/* the data fd even if the budget closed it: what it wrote is still to be synced */
	int fd = in ? io_pin(fs, in, true) : -ESTALE, ret = 0;

	if (fd >= 0 && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		ret = errno;
	else if (fd < -1)
		ret = -fd;
	io_unpin(in, fd);
	fuse_reply_err(req, ret);
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
	ret = in ? rw_copy_up_data(&r, in, false) : -ESTALE;
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
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
	io_unpin(in, fd);
}
