/* SPDX-License-Identifier: MIT */
/*
 * rw-dir.c - directories on a writable mount: opendir, readdir(plus),
 * fsyncdir.
 *
 * opendir takes a snapshot of the merged listing (the upper's names, then
 * the image's it does not cover); readdir walks it by position, resolving
 * each name again, so an offset stays valid while the directory changes
 * and a name removed since is left out.
 *
 * A snapshot lives as long as the kernel holds the handle, and a container
 * can open its biggest directory as often as its fd limit allows: the
 * snapshots of a mount are held to a budget of bytes (CFS_DIRS_BUDGET, or
 * CAIRN_DIR_BUDGET=BYTES), past which opendir fails with ENFILE, so one
 * container cannot take the memory every mount of the daemon lives on. A
 * directory bigger than the budget still opens while nothing else is open.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rw-internal.h"

struct dirsnap {
	uint64_t id;                 /* what the kernel holds (fi->fh) */
	struct dirsnap *hnext;       /* rw_dirs bucket; rw_dirs.lock */
	size_t n, cap;
	size_t bytes;                /* what it takes, as counted against the budget */
	struct dirsnap_ent {
		char *name;
		uint8_t type;
	} *v;
};

/* the bytes of directory snapshots a mount may hold, by default */
#define CFS_DIRS_BUDGET (32ul << 20)

/* A mount's open directory handles by id. */
struct rw_dirs {
	pthread_mutex_t lock;
	uint64_t next;               /* lock */
	struct dirsnap *buckets[256]; /* lock */
	size_t bytes;                /* of every snapshot in buckets; lock */
	size_t budget;               /* bytes; fixed at init */
	bool full;                   /* said so in the log; until below half the budget; lock */
};

int cfs_rw_dirs_init(struct cfs *fs)
{
	const char *env = getenv("CAIRN_DIR_BUDGET");

	fs->dirs = calloc(1, sizeof(*fs->dirs));
	if (!fs->dirs)
		return -ENOMEM;
	fs->dirs->budget = CFS_DIRS_BUDGET;
	if (env && *env) {
		char *end;
		unsigned long long e = strtoull(env, &end, 10);

		if (!*end && e > 0)
			fs->dirs->budget = e < 65536 ? 65536 : (size_t)e;
	}
	pthread_mutex_init(&fs->dirs->lock, NULL);
	return 0;
}

static void snap_free(struct dirsnap *s);

void cfs_rw_dirs_release(struct cfs *fs)
{
	if (!fs->dirs)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(fs->dirs->buckets); i++) {
		while (fs->dirs->buckets[i]) {
			struct dirsnap *s = fs->dirs->buckets[i];

			fs->dirs->buckets[i] = s->hnext;
			snap_free(s);
		}
	}
	pthread_mutex_destroy(&fs->dirs->lock);
	free(fs->dirs);
	fs->dirs = NULL;
}

/*
 * Files s under a new id (id 0) or the one it had (a handed-over handle,
 * always taken). -ENFILE when a new one would take the mount past its
 * budget: s is the caller's still.
 */
static int dirs_add(struct cfs *fs, struct dirsnap *s)
{
	struct rw_dirs *d = fs->dirs;
	size_t k;

	pthread_mutex_lock(&d->lock);
	if (!s->id && d->bytes && d->bytes + s->bytes > d->budget) {
		bool said = d->full;

		d->full = true;
		pthread_mutex_unlock(&d->lock);
		if (!said)
			cfs_log(fs, LOG_WARNING, "open directories take %zu KiB, the mount's budget: "
				"opendir fails with ENFILE until some are closed", d->budget >> 10);
		return -ENFILE;
	}
	d->bytes += s->bytes;
	if (!s->id)
		s->id = ++d->next;
	else if (s->id > d->next)
		d->next = s->id;
	k = s->id & (ARRAY_SIZE(d->buckets) - 1);
	s->hnext = d->buckets[k];
	d->buckets[k] = s;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The handle id, taken out of the table when take; NULL for an id we never gave. */
static struct dirsnap *dirs_find(struct rw_dirs *d, uint64_t id, bool take)
{
	struct dirsnap **pp, *s;

	pthread_mutex_lock(&d->lock);
	for (pp = &d->buckets[id & (ARRAY_SIZE(d->buckets) - 1)]; (s = *pp); pp = &s->hnext)
		if (s->id == id)
			break;
	if (s && take) {
		*pp = s->hnext;
		d->bytes -= s->bytes;
		if (d->bytes < d->budget / 2)
			d->full = false;
	}
	pthread_mutex_unlock(&d->lock);
	return s;
}

static void snap_free(struct dirsnap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].name);
	free(s->v);
	free(s);
}

/* A snapshot's entry; its bytes are counted with malloc's overhead (16) per allocation. */
static int snap_add(struct dirsnap *s, const char *name, size_t len, uint8_t type)
{
	if (s->n == s->cap) {
		size_t c = s->cap ? s->cap * 2 : 64;
		struct dirsnap_ent *v = realloc(s->v, c * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->bytes += (c - s->cap) * sizeof(*v);
		s->cap = c;
	}
	s->v[s->n].name = strndup(name, len);
	if (!s->v[s->n].name)
		return -ENOMEM;
	s->bytes += (len + 1 + 15) / 16 * 16 + 16;
	s->v[s->n++].type = type;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The merged listing of in: the upper's names, then the image's it does not cover. */
static int snapshot(struct rw_req *r, struct cfs_inode *in, struct dirsnap **out)
{
	struct dirsnap *s = calloc(1, sizeof(*s));
	char **upper = NULL;
	size_t nupper = 0, capu = 0;
	int ret = 0;

	if (!s)
		return -ENOMEM;
	s->bytes = sizeof(*s) + 16;
	if (in->rw->upper) {
		int fd = openat(rw_ufd(r->fs, in), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
				ret = snap_add(s, de->d_name, strlen(de->d_name),
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

		ret = cfs_node_get(r->fs, r->t, &in->node, &v);
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
			ret = snap_add(s, de.name, de.name_len, de.type);
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

void rw_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	struct dirsnap *s = NULL;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	ret = in ? snapshot(&r, in, &s) : -ESTALE;
	rw_req_end(&r);
	if (!ret) {
		ret = dirs_add(r.fs, s);
		if (ret)
			snap_free(s);
	}
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = s->id;
	if (fuse_reply_open(req, fi) == -ENOENT)
		snap_free(dirs_find(r.fs->dirs, s->id, true));
}

void rw_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	snap_free(dirs_find(cfs_of(req)->dirs, fi->fh, true));
	fuse_reply_err(req, 0);
}

/* hex names in one handed-over part of a listing, about */
#define DIRS_PART_BYTES (64u << 10)

json_object *cfs_rw_dirs_save(struct cfs *fs)
{
	json_object *parts = json_object_new_array();
	struct rw_dirs *d = fs->dirs;

	if (!parts)
		return NULL;
	pthread_mutex_lock(&d->lock);
	for (size_t b = 0; b < ARRAY_SIZE(d->buckets); b++) {
		for (struct dirsnap *s = d->buckets[b]; s; s = s->hnext) {
			size_t i = 0;

			do {
				json_object *p = json_object_new_object(), *names = json_object_new_array();
				char *types = malloc(1001);
				size_t k = 0, bytes = 0;

				/* a part is one datagram: well within a socket's default buffer (208 KiB) */
				for (; i < s->n && k < 1000 && bytes < DIRS_PART_BYTES; i++, k++) {
					size_t len = strlen(s->v[i].name);
					char *hex = malloc(2 * len + 1);

					bytes += 2 * len + 4;

					for (size_t j = 0; hex && j < len; j++)
						snprintf(hex + 2 * j, 3, "%02x", (unsigned char)s->v[i].name[j]);
					if (hex)
						hex[2 * len] = '\0';
					json_object_array_add(names, json_object_new_string(hex ? hex : ""));
					free(hex);
					if (types)
						types[k] = (char)('0' + s->v[i].type);
				}
				if (types)
					types[k] = '\0';
				json_object_object_add(p, "id", json_object_new_int64((int64_t)s->id));
				json_object_object_add(p, "names", names);
				json_object_object_add(p, "types", json_object_new_string(types ? types : ""));
				json_object_array_add(parts, p);
				free(types);
			} while (i < s->n);
		}
	}
	pthread_mutex_unlock(&d->lock);
	return parts;
}

int cfs_rw_dirs_load(struct cfs *fs, json_object *part)
{
	json_object *v, *names;
	const char *types = "";
	struct dirsnap *s;
	uint64_t id;
	size_t n, before;
	int ret = 0;

	if (!json_object_object_get_ex(part, "id", &v) ||
	    !json_object_object_get_ex(part, "names", &names))
		return cairn_err(-EPROTO, "a handed-over directory handle without its id");
	id = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(part, "types", &v))
		types = json_object_get_string(v);
	n = json_object_array_length(names);
	s = dirs_find(fs->dirs, id, false);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->id = id;
		s->bytes = sizeof(*s) + 16;
		dirs_add(fs, s);
	}
	before = s->bytes;
	for (size_t i = 0; !ret && i < n; i++) {
		const char *hex = json_object_get_string(json_object_array_get_idx(names, i));
		size_t len = strlen(hex) / 2;
		char name[CAIRN_NAME_MAX + 1];

		if (len > CAIRN_NAME_MAX || i >= strlen(types)) {
			ret = cairn_err(-EPROTO, "a handed-over directory listing is damaged");
			break;
		}
		for (size_t j = 0; !ret && j < len; j++) {
			unsigned c;

			if (sscanf(hex + 2 * j, "%2x", &c) != 1) {
				ret = cairn_err(-EPROTO, "a handed-over directory listing is damaged");
				break;
			}
			name[j] = (char)c;
		}
		if (!ret)
			ret = snap_add(s, name, len, (uint8_t)(types[i] - '0'));
	}
	/* in the table already: what it grew by counts now */
	pthread_mutex_lock(&fs->dirs->lock);
	fs->dirs->bytes += s->bytes - before;
	pthread_mutex_unlock(&fs->dirs->lock);
	return ret;
}

/* A merged directory being listed from its snapshot. */
struct rw_dir {
	struct rw_req *r;
	struct cfs_inode *in;
	const struct dirsnap *s;
};

static int rw_dirent(void *arg, uint64_t i, bool plus, char *name, struct fuse_entry_param *e,
		     struct cfs_inode **child)
{
	struct rw_dir *d = arg;
	const char *sname = d->s->v[i].name;
	struct rw_entry ent;

	if (rw_resolve(d->r, d->in, sname, &ent))
		return 1; /* gone since the directory was opened */
	strcpy(name, sname); /* resolved: no longer than CAIRN_NAME_MAX */
	if (plus) {
		*child = rw_entry_ref(d->r, d->in, name, &ent);
		if (!*child || rw_inode_stat(d->r, *child, &e->attr)) {
			if (*child)
				cfs_inode_forget(d->r->fs, (*child)->ino, 1);
			*child = NULL;
			return 1;
		}
		e->ino = (*child)->ino;
		e->attr_timeout = e->entry_timeout = d->r->fs->timeout;
	} else {
		struct cfs_inode *known = rw_inode_at(d->r, d->in, name, &ent);

		e->attr.st_ino = known ? known->ino : rw_entry_key(d->in, name, &ent);
		e->attr.st_mode = cairn_type_st_mode(ent.type);
		rw_entry_release(&ent);
	}
	return 0;
}

static void readdir_merged(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi, bool plus)
{
	struct dirsnap *s = dirs_find(cfs_of(req)->dirs, fi->fh, false);
	struct rw_req r;
	struct rw_dir d;
	struct cfs_inode *in;
	char *buf;
	size_t len;
	int ret = rw_req_begin(req, &r);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (size > CFS_MAX_READ)
		size = CFS_MAX_READ;
	buf = malloc(size);
	if (!in || !buf || !s) {
		rw_req_end(&r);
		free(buf);
		fuse_reply_err(req, !s ? EBADF : in ? ENOMEM : ESTALE);
		return;
	}
	d = (struct rw_dir){ .r = &r, .in = in, .s = s };
	len = cfs_readdir_fill(req, r.fs, in, buf, size, off, plus, s->n, rw_dirent, &d, &ret);
	rw_req_end(&r);
	fuse_reply_buf(req, buf, len);
	free(buf);
}

void rw_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	readdir_merged(req, ino, size, off, fi, false);
}

void rw_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	readdir_merged(req, ino, size, off, fi, true);
}

void rw_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rw_req r;
	struct cfs_inode *in;
	int ret = rw_req_begin(req, &r), fd = -1;

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	in = cfs_inode_find(r.fs, ino);
	if (in && in->rw->upper) {
		fd = openat(rw_ufd(r.fs, in), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			ret = -errno;
	}
	rw_req_end(&r);
	/* the sync itself without the lock: it may take a while */
	if (fd >= 0 && fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	fuse_reply_err(req, in ? -ret : ESTALE);
}
