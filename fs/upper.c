/* SPDX-License-Identifier: MIT */
/*
 * upper.c - opening, locking and recording an upper directory (upper.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "upper.h"

const char *cfs_xattr_to_upper(const char *name, char *buf, size_t len)
{
	size_t n = strlen(CFS_XATTR_PREFIX);

	if (strncmp(name, CFS_XATTR_PREFIX, n) != 0)
		return name;
	if ((size_t)snprintf(buf, len, "%s%s", CFS_XATTR_ESCAPE, name + n) >= len)
		return NULL;
	return buf;
}

const char *cfs_xattr_from_upper(const char *name, char *buf, size_t len)
{
	size_t n = strlen(CFS_XATTR_PREFIX), e = strlen(CFS_XATTR_ESCAPE);

	if (strncmp(name, CFS_XATTR_PREFIX, n) != 0)
		return name;
	if (strncmp(name, CFS_XATTR_ESCAPE, e) != 0)
		return NULL; /* a marker */
	if ((size_t)snprintf(buf, len, "%s%s", CFS_XATTR_PREFIX, name + e) >= len)
		return NULL;
	return buf;
}

/* 32 hex digits: a node id. */
static bool marker_id(const void *value, size_t len, struct cairn_id *id)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (len != CAIRN_ID_HEX_LEN)
		return false;
	memcpy(hex, value, CAIRN_ID_HEX_LEN);
	hex[CAIRN_ID_HEX_LEN] = '\0';
	return cairn_id_parse_prefix(hex, id) == CAIRN_ID_HEX_LEN;
}

/* "y" (all of the origin) or how many leading bytes are the origin's. */
static bool metacopy_len(const void *value, size_t len, uint64_t *out)
{
	char v[24], *end;

	if (len == 1 && *(const char *)value == 'y') {
		*out = UINT64_MAX;
		return true;
	}
	if (len == 0 || len >= sizeof(v))
		return false;
	memcpy(v, value, len);
	v[len] = '\0';
	if (v[0] < '0' || v[0] > '9')
		return false;
	errno = 0;
	*out = strtoull(v, &end, 10);
	return !errno && *end == '\0';
}

bool cfs_marks_parse(struct cfs_marks *m, const char *name, const void *value, size_t len)
{
	if (!strcmp(name, CFS_XATTR_OPAQUE))
		m->opaque = true;
	else if (!strcmp(name, CFS_XATTR_METACOPY))
		m->metacopy = metacopy_len(value, len, &m->lower_len);
	else if (!strcmp(name, CFS_XATTR_ORIGIN))
		m->has_origin = marker_id(value, len, &m->origin);
	else if (!strcmp(name, CFS_XATTR_REDIRECT))
		m->has_redirect = marker_id(value, len, &m->redirect);
	else if (!strcmp(name, CFS_XATTR_DEVICE))
		m->dev00 = len == strlen(CFS_DEVICE_CHR00) && !memcmp(value, CFS_DEVICE_CHR00, len);
	else
		return false;
	return true;
}

void cfs_marks_finish(struct cfs_marks *m)
{
	m->metacopy &= m->has_origin;
}

int cfs_upper_marks_read(int fd, struct cfs_marks *m, bool *none)
{
	static const char *const names[] = { CFS_XATTR_OPAQUE, CFS_XATTR_METACOPY,
					     CFS_XATTR_ORIGIN, CFS_XATTR_REDIRECT,
					     CFS_XATTR_DEVICE };
	char list[4096], path[32], val[64];
	ssize_t n = listxattr(cfs_fdpath(fd, path), list, sizeof(list));

	memset(m, 0, sizeof(*m));
	*none = false;
	if (n < 0) {
		if (errno == ENOTSUP) {
			*none = true;
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
		*none = !other;
	}
	if (!memmem(list, (size_t)n, CFS_XATTR_PREFIX, strlen(CFS_XATTR_PREFIX)))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		ssize_t vl = getxattr(path, names[i], val, sizeof(val));

		if (vl >= 0)
			cfs_marks_parse(m, names[i], val, (size_t)vl);
	}
	cfs_marks_finish(m);
	return 0;
}

void cfs_upper_tmpname(struct cfs_upper *u, char name[32])
{
	snprintf(name, 32, "t%d.%u", (int)getpid(), atomic_fetch_add(&u->seq, 1));
}

int cfs_remove_tree(int dfd, const char *name)
{
	struct stat st;
	DIR *d;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOMEM;
	}
	for (struct dirent *e; (e = readdir(d));) {
		int ret;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		ret = cfs_remove_tree(dirfd(d), e->d_name);
		if (ret) {
			closedir(d);
			return ret;
		}
	}
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

static int write_json(struct cfs_upper *u)
{
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1];
	const char *s;
	int fd, ret = 0;

	cairn_id_hex(&u->image, hex);
	json_object_object_add(o, "format", json_object_new_int(CFS_UPPER_FORMAT));
	json_object_object_add(o, "image", json_object_new_string(hex));
	json_object_object_add(o, "platform",
			       u->platform[0] ? json_object_new_string(u->platform) : NULL);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	fd = openat(u->dir_fd, "upper.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0644);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s) || write(fd, "\n", 1) != 1 ||
	    fsync(fd) < 0)
		ret = -errno ? -errno : -EIO;
	if (fd >= 0)
		close(fd);
	if (!ret && renameat(u->dir_fd, "upper.json.tmp", u->dir_fd, "upper.json") < 0)
		ret = -errno;
	if (!ret)
		fsync(u->dir_fd);
	json_object_put(o);
	return ret ? cairn_err(ret, "cannot write %s/upper.json: %s", u->path, strerror(-ret)) : 0;
}

/* Reads upper.json into u; -ENOENT when there is none. */
static int read_json(struct cfs_upper *u)
{
	json_object *o, *v;
	char buf[4096];
	ssize_t n;
	int fd = openat(u->dir_fd, "upper.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	o = json_tokener_parse(buf);
	if (!o || !json_object_object_get_ex(o, "format", &v) ||
	    json_object_get_int(v) != CFS_UPPER_FORMAT ||
	    !json_object_object_get_ex(o, "image", &v) || !json_object_get_string(v) ||
	    cairn_id_parse_prefix(json_object_get_string(v), &u->image) != CAIRN_ID_HEX_LEN) {
		json_object_put(o);
		return cairn_err(-EINVAL, "%s/upper.json is not an upper record of format %d",
				 u->path, CFS_UPPER_FORMAT);
	}
	u->platform[0] = '\0';
	if (json_object_object_get_ex(o, "platform", &v) && json_object_is_type(v, json_type_string))
		snprintf(u->platform, sizeof(u->platform), "%s", json_object_get_string(v));
	json_object_put(o);
	return 0;
}

static struct cfs_upper *upper_new(const char *dir)
{
	struct cfs_upper *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->dir_fd = u->tree_fd = u->work_fd = u->lock_fd = -1;
	snprintf(u->path, sizeof(u->path), "%s", dir);
	return u;
}

void cfs_upper_close(struct cfs_upper *u)
{
	if (!u)
		return;
	if (u->tree_fd >= 0)
		close(u->tree_fd);
	if (u->work_fd >= 0)
		close(u->work_fd);
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	if (u->dir_fd >= 0)
		close(u->dir_fd);
	free(u);
}

/* Does this filesystem make whiteouts by rename? Tried once, in work/. */
static bool probe_rename_whiteout(struct cfs_upper *u)
{
	char a[32], b[32];
	struct stat st;
	bool ok = false;
	int fd;

	cfs_upper_tmpname(u, a);
	cfs_upper_tmpname(u, b);
	fd = openat(u->work_fd, a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	close(fd);
	if (renameat2(u->work_fd, a, u->work_fd, b, RENAME_WHITEOUT) == 0)
		ok = fstatat(u->work_fd, a, &st, AT_SYMLINK_NOFOLLOW) == 0 && cfs_is_whiteout(&st);
	unlinkat(u->work_fd, a, 0);
	unlinkat(u->work_fd, b, 0);
	return ok;
}

/* Opens dir's fds; creates the layout when create is set. */
static int open_layout(struct cfs_upper *u, bool create)
{
	struct stat st;

	if (create && mkdir(u->path, 0700) < 0 && errno != EEXIST)
		return cairn_err(-errno, "cannot create upper directory '%s': %s", u->path,
				 strerror(errno));
	u->dir_fd = open(u->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (u->dir_fd < 0)
		return cairn_err(-errno, "cannot open upper directory '%s': %s", u->path,
				 strerror(errno));
	for (int i = 0; i < 2; i++) {
		const char *name = i ? "work" : "tree";
		int *fd = i ? &u->work_fd : &u->tree_fd;

		if (create && mkdirat(u->dir_fd, name, i ? 0700 : 0755) < 0 && errno != EEXIST)
			return cairn_err(-errno, "cannot create %s/%s: %s", u->path, name,
					 strerror(errno));
		*fd = openat(u->dir_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (*fd < 0)
			return cairn_err(-errno, "'%s' is not an upper directory (no %s/): %s",
					 u->path, name, strerror(errno));
	}
	if (fstat(u->tree_fd, &st) == 0) {
		struct stat wst;

		if (fstat(u->work_fd, &wst) == 0 && wst.st_dev != st.st_dev)
			return cairn_err(-EXDEV, "%s/work and %s/tree are on different filesystems",
					 u->path, u->path);
	}
	return 0;
}

/*
 * How many links one file may have on the upper's filesystem (65000 on
 * ext4). glibc answers 127 for a filesystem it does not know (tmpfs, whose
 * limit is far higher): that is taken as not known.
 */
static unsigned long upper_link_max(struct cfs_upper *u)
{
	long n = fpathconf(u->tree_fd, _PC_LINK_MAX);

	return n > 0 && n != 127 ? (unsigned long)n : 0;
}

static int take_lock(struct cfs_upper *u, bool keep)
{
	int fd = openat(u->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return cairn_err(-errno, "cannot open %s/lock: %s", u->path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(fd);
		if (e == EWOULDBLOCK)
			return cairn_err(-EBUSY, "upper directory '%s' is in use by a running mount "
					 "or commit", u->path);
		return cairn_err(-e, "cannot lock %s/lock: %s", u->path, strerror(e));
	}
	if (keep)
		u->lock_fd = fd;
	else
		close(fd);
	return 0;
}

int cfs_upper_open(const char *dir, const struct cairn_id *image, const char *platform,
		   struct cfs_upper **out)
{
	struct cfs_upper *u = upper_new(dir);
	int ret;

	if (!u)
		return -ENOMEM;
	ret = open_layout(u, true);
	if (!ret)
		ret = take_lock(u, true);
	if (!ret) {
		ret = read_json(u);
		if (ret == -ENOENT) {
			u->image = *image;
			snprintf(u->platform, sizeof(u->platform), "%s", platform ? platform : "");
			ret = write_json(u);
			u->fresh = true;
		} else if (!ret) {
			char want[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&u->image, want);
			if (u->platform[0] && (!platform || strcmp(platform, u->platform)))
				ret = cairn_err(-EINVAL, "upper directory '%s' was made on platform '%s': "
						"mount that platform", dir, u->platform);
			else if (!u->platform[0] &&
				 (platform || !cairn_id_eq(&u->image, image)))
				ret = cairn_err(-EINVAL, "upper directory '%s' was made on image %.12s: "
						"mount that image, or commit it", dir, want);
		}
	}
	if (!ret) {
		/* scratch an interrupted copy-up left: never visible, so never needed */
		int wfd = openat(u->dir_fd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *d = wfd >= 0 ? fdopendir(wfd) : NULL;

		if (d) {
			for (struct dirent *e; (e = readdir(d));)
				if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
					cfs_remove_tree(dirfd(d), e->d_name);
			closedir(d);
		} else if (wfd >= 0) {
			close(wfd);
		}
		u->rename_whiteout = probe_rename_whiteout(u);
		u->link_max = upper_link_max(u);
	}
	if (ret) {
		cfs_upper_close(u);
		return ret;
	}
	*out = u;
	return 0;
}

int cfs_upper_open_read(const char *dir, bool lock, struct cfs_upper **out)
{
	struct cfs_upper *u = upper_new(dir);
	int ret;

	if (!u)
		return -ENOMEM;
	ret = open_layout(u, false);
	if (!ret && lock)
		ret = take_lock(u, true); /* held until cfs_upper_close(): no mount starts meanwhile */
	if (!ret) {
		ret = read_json(u);
		if (ret == -ENOENT)
			ret = cairn_err(-EINVAL, "'%s' is not an upper directory (no upper.json)", dir);
	}
	if (ret) {
		cfs_upper_close(u);
		return ret;
	}
	*out = u;
	return 0;
}

json_object *cfs_upper_save(const struct cfs_upper *u, int *fds, unsigned *nfds)
{
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (!o)
		return NULL;
	cairn_id_hex(&u->image, hex);
	json_object_object_add(o, "path", json_object_new_string(u->path));
	json_object_object_add(o, "image", json_object_new_string(hex));
	json_object_object_add(o, "platform", json_object_new_string(u->platform));
	json_object_object_add(o, "seq", json_object_new_int64(atomic_load(&u->seq)));
	json_object_object_add(o, "rename_whiteout", json_object_new_boolean(u->rename_whiteout));
	json_object_object_add(o, "fd", json_object_new_int((int)*nfds));
	fds[(*nfds)++] = u->dir_fd;
	fds[(*nfds)++] = u->tree_fd;
	fds[(*nfds)++] = u->work_fd;
	fds[(*nfds)++] = u->lock_fd;
	return o;
}

int cfs_upper_adopt(json_object *o, int *fds, unsigned nfds, struct cfs_upper **out)
{
	json_object *v;
	struct cfs_upper *u;
	int64_t at = -1;

	if (json_object_object_get_ex(o, "fd", &v))
		at = json_object_get_int64(v);
	if (at < 0 || (uint64_t)at + 4 > nfds || !json_object_object_get_ex(o, "path", &v))
		return cairn_err(-EPROTO, "a handed-over upper without its descriptors");
	u = upper_new(json_object_get_string(v));
	if (!u)
		return -ENOMEM;
	u->dir_fd = fds[at];
	u->tree_fd = fds[at + 1];
	u->work_fd = fds[at + 2];
	u->lock_fd = fds[at + 3];
	fds[at] = fds[at + 1] = fds[at + 2] = fds[at + 3] = -1; /* ours now */
	if (json_object_object_get_ex(o, "image", &v))
		cairn_id_parse_prefix(json_object_get_string(v), &u->image);
	if (json_object_object_get_ex(o, "platform", &v))
		snprintf(u->platform, sizeof(u->platform), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "seq", &v))
		atomic_store(&u->seq, (unsigned)json_object_get_int64(v));
	if (json_object_object_get_ex(o, "rename_whiteout", &v))
		u->rename_whiteout = json_object_get_boolean(v);
	*out = u;
	return 0;
}

int cfs_upper_set_image(struct cfs_upper *u, const struct cairn_id *image)
{
	struct cairn_id was = u->image;
	int ret;

	/*
	 * u->image is what upper.json holds on disk (read from it, or written
	 * and synced): the same image again needs no synced rewrite. A mount
	 * of a platform starts with a switch to the pointer it just read,
	 * which is most often the image the upper was opened with.
	 */
	if (cairn_id_eq(&was, image))
		return 0;
	u->image = *image;
	ret = write_json(u);
	if (ret)
		u->image = was; /* the file still says the old one: the next switch writes again */
	return ret;
}
