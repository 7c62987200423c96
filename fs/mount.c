/* SPDX-License-Identifier: MIT */
/*
 * mount.c - one mount's life: the kernel mount (in the command's mount
 * namespace), then inside a daemon its image, upper, inode table and FUSE
 * session, its record and its counters.
 *
 * Nothing here is per process: a mount is a struct cfs reached from each
 * request, over the daemon's store, cache and threads, so a daemon holds
 * any number of them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "fs-internal.h"
#include "image.h"
#include "lazy.h"

/* "MAJ:MIN" of the last mount on mp in this process's mountinfo: its minor, or 0. */
static unsigned conn_of(const char *mp)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	unsigned conn = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char path[4096];
		unsigned major, minor;

		/* our mountpoints have no spaces or escapes: cmd_mount.c checks */
		if (sscanf(line, "%*s %*s %u:%u %*s %4095s", &major, &minor, path) == 3 &&
		    strcmp(path, mp) == 0 && major == 0)
			conn = minor; /* the last one is the newest */
	}
	fclose(f);
	return conn;
}

/* Mount flags by name, as mount(8) and libfuse know them; the rest go to the kernel's data. */
static const struct {
	const char *name;
	unsigned long set, clear;
} mount_flags[] = {
	{ "ro", MS_RDONLY, 0 },        { "rw", 0, MS_RDONLY },
	{ "nosuid", MS_NOSUID, 0 },    { "suid", 0, MS_NOSUID },
	{ "nodev", MS_NODEV, 0 },      { "dev", 0, MS_NODEV },
	{ "noexec", MS_NOEXEC, 0 },    { "exec", 0, MS_NOEXEC },
	{ "noatime", MS_NOATIME, 0 },  { "atime", 0, MS_NOATIME },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
	{ "relatime", MS_RELATIME, 0 }, { "norelatime", 0, MS_RELATIME },
	{ "strictatime", MS_STRICTATIME, 0 }, { "lazytime", MS_LAZYTIME, 0 },
	{ "sync", MS_SYNCHRONOUS, 0 }, { "async", 0, MS_SYNCHRONOUS },
	{ "dirsync", MS_DIRSYNC, 0 },
};

/*
 * opts (comma-separated) into mount flags and the kernel's own options,
 * appended to data. -EINVAL for what only libfuse's mount would know.
 */
static int split_opts(const char *opts, unsigned long *flags, char *data, size_t len)
{
	cleanup_free char *copy = strdup(opts);
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i, used = strlen(data);

		for (i = 0; i < ARRAY_SIZE(mount_flags); i++)
			if (strcmp(w, mount_flags[i].name) == 0)
				break;
		if (i < ARRAY_SIZE(mount_flags)) {
			*flags = (*flags & ~mount_flags[i].clear) | mount_flags[i].set;
			continue;
		}
		if (!strncmp(w, "fsname=", 7) || !strncmp(w, "subtype=", 8) || !strcmp(w, "auto_unmount") ||
		    !strcmp(w, "nonempty") || !strncmp(w, "fd=", 3) || !strncmp(w, "rootmode=", 9) ||
		    !strncmp(w, "user_id=", 8) || !strncmp(w, "group_id=", 9))
			return cairn_err(-EINVAL, "mount option '%s' is cairn's own", w);
		if (snprintf(data + used, len - used, ",%s", w) >= (int)(len - used))
			return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Without the right to mount (not root): libfuse's way, through fusermount3.
 * (libfuse keeps a copy of the mountpoint it never frees unless it also
 * unmounts: a few bytes, once, in a short-lived command.)
 */
static int mount_by_libfuse(const struct cfs_options *o, const char *opts, int *fd)
{
	static const struct fuse_lowlevel_ops none = { 0 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	int ret = 0;

	if (fuse_opt_add_arg(&args, "cairn") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts)) {
		fuse_opt_free_args(&args);
		return -ENOMEM;
	}
	se = fuse_session_new(&args, &none, sizeof(none), NULL);
	fuse_opt_free_args(&args);
	if (!se)
		return cairn_err(-EINVAL, "bad mount options '%s'", opts);
	if (fuse_session_mount(se, o->mountpoint) != 0) {
		fuse_session_destroy(se);
		return cairn_err(-EIO, "the kernel refused the mount (see the line above)");
	}
	*fd = fcntl(fuse_session_fd(se), F_DUPFD_CLOEXEC, 3);
	if (*fd < 0)
		ret = -errno;
	/* closes the session's fd, not the mount: ours keeps the connection */
	fuse_session_destroy(se);
	if (ret)
		umount2(o->mountpoint, MNT_DETACH);
	return ret;
}

int cfs_kernel_mount(struct cfs_options *o, int *fd)
{
	unsigned long flags = MS_NOSUID | MS_NODEV | (o->upper_dir ? 0 : MS_RDONLY);
	char data[4096], opts[4096];
	int ret;

	*fd = -1;
	cairn_err_clear();
	if (!o->nosuid)
		flags &= ~MS_NOSUID;
	if (o->dev)
		flags &= ~MS_NODEV;
	snprintf(opts, sizeof(opts),
		 "fsname=cairn,subtype=cairn,%s,allow_other,default_permissions,max_read=%u,%s,%s%s%s",
		 o->upper_dir ? "rw" : "ro", CFS_MAX_READ, o->nosuid ? "nosuid" : "suid",
		 o->dev ? "dev" : "nodev", o->fuse_opts ? "," : "", o->fuse_opts ? o->fuse_opts : "");
	*fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return cairn_err(-errno, "cannot open /dev/fuse: %s", strerror(errno));
	snprintf(data, sizeof(data),
		 "fd=%d,rootmode=40000,user_id=%u,group_id=%u,allow_other,default_permissions,"
		 "max_read=%u", *fd, (unsigned)getuid(), (unsigned)getgid(), CFS_MAX_READ);
	ret = o->fuse_opts ? split_opts(o->fuse_opts, &flags, data, sizeof(data)) : 0;
	if (!ret && mount("cairn", o->mountpoint, "fuse.cairn", flags, data) < 0)
		ret = -errno;
	if (ret == -EPERM) {
		/* not ours to mount: libfuse's helper may be */
		close(*fd);
		*fd = -1;
		ret = mount_by_libfuse(o, opts, fd);
	} else if (ret) {
		close(*fd);
		*fd = -1;
		if (!*cairn_errmsg())
			cairn_err(ret, "the kernel refused the mount (%s; options %s)", strerror(-ret),
				  data);
	}
	if (ret)
		return ret;
	o->conn = conn_of(o->mountpoint);
	o->ns = cfs_ctl_mount_ns();
	return 0;
}

static char *dup_or_null(const char *s, bool *nomem)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		*nomem = true;
	return p;
}

static void opts_release(struct cfs_options *o)
{
	free((char *)o->source);
	free((char *)o->platform);
	free((char *)o->mountpoint);
	free((char *)o->fuse_opts);
	free((char *)o->upper_dir);
}

/* The image and its root; the upper. Called before the mount is shared. */
static int setup(struct cfs *fs, const struct cfs_options *o)
{
	struct cairn_image img;
	struct cairn_txn *t;
	struct cairn_node_view v;
	int ret;

	ret = cairn_txn_begin(fs->d->store, false, &t);
	if (ret)
		return ret;
	ret = cairn_image_get(t, &o->image, &img);
	if (!ret) {
		fs->root = img.root;
		fs->image_nodes = img.nodes;
		fs->image_size = img.logical_size;
		ret = cairn_node_get(t, &fs->root, 0, &v);
		if (!ret && v.type != CAIRN_NODE_DIR)
			ret = cairn_err(-EUCLEAN, "the image's root is not a directory");
	}
	if (ret) {
		cairn_txn_abort(t);
		return ret == -ENOENT ? cairn_err(ret, "the image is not in the store") : ret;
	}
	if (o->upper_dir) {
		ret = cfs_upper_open(o->upper_dir, &o->image, o->platform, &fs->upper);
		if (ret) {
			cairn_txn_abort(t);
			return ret;
		}
		fs->nkbuckets = 1u << 16;
		fs->kbuckets = calloc(fs->nkbuckets, sizeof(*fs->kbuckets));
		if (!fs->kbuckets || cfs_rw_dirs_init(fs)) {
			cairn_txn_abort(t);
			return -ENOMEM;
		}
		cfs_rw_fds_init(fs); /* the daemon shares its fds out among its mounts (daemon.c) */
	}
	if (fs->upper && fs->upper->fresh) {
		ret = cfs_rw_root_attrs(fs, &v);
		if (ret) {
			cairn_txn_abort(t);
			return cairn_err(ret, "cannot set up %s/tree: %s", o->upper_dir, strerror(-ret));
		}
	}
	ret = cfs_itable_init(fs);
	if (!ret)
		ret = cfs_leases_init(fs);
	if (!ret)
		ret = cfs_inode_root(fs, &v);
	cairn_txn_abort(t);
	return ret;
}

/* The leases changed (an old image's last inode was forgotten): the records again. */
static void record_publish(void *arg)
{
	cfs_mount_record(arg);
}

/*
 * A mount of o with record id, not set up yet: its own copy of the options,
 * its locks, one reference. NULL without memory (nothing kept).
 */
static struct cfs *mount_alloc(struct cfs_daemon *d, const struct cfs_options *o, const char *id)
{
	struct cfs *fs = calloc(1, sizeof(*fs));
	pthread_rwlockattr_t a;
	bool nomem = false;

	if (!fs)
		return NULL;
	fs->d = d;
	fs->opts = *o;
	fs->opts.source = dup_or_null(o->source ? o->source : "", &nomem);
	fs->opts.platform = dup_or_null(o->platform, &nomem);
	fs->opts.mountpoint = dup_or_null(o->mountpoint, &nomem);
	fs->opts.fuse_opts = dup_or_null(o->fuse_opts, &nomem);
	fs->opts.upper_dir = dup_or_null(o->upper_dir, &nomem);
	fs->o = &fs->opts;
	snprintf(fs->id, sizeof(fs->id), "%s", id);
	fs->timeout = 86400.0;
	fs->fd = -1;
	atomic_init(&fs->refs, 1);
	/* a switch must not starve behind a steady stream of reads */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->switch_lock, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&fs->ns_lock, NULL);
	pthread_mutex_init(&fs->loop_lock, NULL);
	pthread_mutex_init(&fs->record_lock, NULL);
	fs->leases.publish = record_publish;
	fs->leases.publish_arg = fs;
	if (nomem || !fs->opts.mountpoint || !*id) {
		cfs_mount_free(fs);
		return NULL;
	}
	return fs;
}

/* The mount's FUSE session (its handlers by kind, libfuse's -d when asked): 0 or -errno. */
static int session_new(struct cfs *fs, bool debug)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opt[64];

	snprintf(opt, sizeof(opt), "max_read=%u", CFS_MAX_READ);
	if (fuse_opt_add_arg(&args, "cairn") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opt) || (debug && fuse_opt_add_arg(&args, "-d"))) {
		fuse_opt_free_args(&args);
		return -ENOMEM;
	}
	fs->se = fs->o->upper_dir ? fuse_session_new(&args, &cfs_rw_ops, sizeof(cfs_rw_ops), fs)
				  : fuse_session_new(&args, &cfs_ops, sizeof(cfs_ops), fs);
	fuse_opt_free_args(&args);
	return fs->se ? 0 : cairn_err(-ENOMEM, "cannot make a FUSE session");
}

int cfs_mount_new(struct cfs_daemon *d, const struct cfs_options *o, int fd, const char *id,
		  struct cfs **out)
{
	struct cfs *fs = mount_alloc(d, o, id);
	char dev[32];
	int ret;

	*out = NULL;
	if (!fs)
		return -ENOMEM;
	fs->started_ns = cairn_now_ns();
	fs->image = o->image;
	ret = setup(fs, fs->o);
	if (!ret)
		ret = session_new(fs, o->debug && d->foreground);
	if (ret) {
		cfs_mount_free(fs);
		return ret;
	}
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fd);
	/* "/dev/fd/N": libfuse takes the connection as it is, mounted by the command */
	if (fuse_session_mount(fs->se, dev) != 0) {
		cfs_mount_free(fs);
		return cairn_err(-EBADF, "the FUSE connection handed over is not usable");
	}
	fs->fd = fd; /* the session's from now on: fuse_session_destroy() closes it */
	*out = fs;
	return 0;
}

int cfs_mount_adopt(struct cfs_daemon *d, const struct cfs_options *o, const char *id,
		    json_object *upper, int *fds, unsigned nfds, struct cfs **out)
{
	struct cfs *fs = mount_alloc(d, o, id);
	int ret;

	*out = NULL;
	if (!fs)
		return -ENOMEM;
	ret = cfs_itable_init(fs);
	if (!ret && (upper != NULL) != (o->upper_dir != NULL))
		ret = cairn_err(-EPROTO, "a handed-over mount whose upper does not match");
	if (!ret && upper) {
		ret = cfs_upper_adopt(upper, fds, nfds, &fs->upper);
		fs->nkbuckets = 1u << 16;
		fs->kbuckets = ret ? NULL : calloc(fs->nkbuckets, sizeof(*fs->kbuckets));
		if (!ret && (!fs->kbuckets || cfs_rw_dirs_init(fs)))
			ret = -ENOMEM;
		if (!ret)
			cfs_rw_fds_init(fs);
	}
	if (!ret)
		ret = session_new(fs, false);
	if (ret) {
		cfs_mount_free(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

void cfs_mount_free(struct cfs *fs)
{
	if (!fs)
		return;
	if (fs->se)
		fuse_session_destroy(fs->se); /* closes the fd once it had it, not before */
	if (fs->buckets)
		cfs_itable_release(fs);
	cfs_leases_release(fs);
	free(fs->kbuckets);
	cfs_rw_fds_release(fs);
	cfs_rw_dirs_release(fs);
	cfs_upper_close(fs->upper);
	while (fs->views) {
		struct cfs_view *v = fs->views;

		fs->views = v->next;
		free(v->mountpoint);
		free(v->source);
		free(v);
	}
	pthread_mutex_destroy(&fs->record_lock);
	pthread_mutex_destroy(&fs->loop_lock);
	pthread_mutex_destroy(&fs->ns_lock);
	pthread_rwlock_destroy(&fs->switch_lock);
	opts_release(&fs->opts);
	free(fs->init);
	free(fs->replay);
	free(fs);
}

/* The records of fs: all of them, or (only set) the one of that bind. */
static int record_write(struct cfs *fs, const char *only)
{
	struct cfs_record r = { 0 };
	struct cfs_view *views = NULL;
	bool primary;
	int ret = 0;

	r.pid = getpid();
	r.isolated = fs->d->isolated;
	r.ro = !fs->upper;
	r.socket = fs->d->sock_path;
	r.source = (char *)fs->o->source;
	r.platform = (char *)(fs->o->platform ? fs->o->platform : "");
	r.upper = (char *)(fs->o->upper_dir ? fs->o->upper_dir : "");
	r.started_ns = fs->started_ns;
	pthread_rwlock_rdlock(&fs->switch_lock);
	r.image = fs->image;
	r.generation = fs->generation;
	pthread_rwlock_unlock(&fs->switch_lock);
	{
		/* the image served first, then every other one inodes still read (lease.c) */
		struct cairn_id *leased = NULL;
		size_t n = cfs_leases_get(fs, &leased);

		r.leases = calloc(1 + n, sizeof(*r.leases));
		if (r.leases) {
			r.leases[r.nleases++] = r.image;
			for (size_t i = 0; i < n; i++)
				if (!cairn_id_eq(&leased[i], &r.image))
					r.leases[r.nleases++] = leased[i];
		}
		free(leased);
	}
	if (!r.leases)
		return -ENOMEM;
	pthread_mutex_lock(&fs->record_lock);
	if (fs->unrecorded) {
		/* gone, or handed to another daemon: no record of ours any more */
		pthread_mutex_unlock(&fs->record_lock);
		free(r.leases);
		return 0;
	}
	/* a copy of where the mount is, so no lock is held while writing files */
	pthread_mutex_lock(&fs->d->mounts_lock);
	primary = !fs->primary_gone;
	for (struct cfs_view *v = fs->views; v; v = v->next) {
		struct cfs_view *c;

		if (only && strcmp(v->id, only))
			continue;
		c = calloc(1, sizeof(*c));

		if (!c || !(c->mountpoint = strdup(v->mountpoint)) ||
		    !(c->source = strdup(v->source ? v->source : fs->o->source))) {
			if (c)
				free(c->mountpoint);
			free(c);
			ret = -ENOMEM;
			break;
		}
		memcpy(c->id, v->id, sizeof(c->id));
		c->ns = v->ns;
		c->next = views;
		views = c;
	}
	pthread_mutex_unlock(&fs->d->mounts_lock);
	if (primary && !only && !ret) {
		snprintf(r.id, sizeof(r.id), "%s", fs->id);
		r.mountpoint = (char *)fs->o->mountpoint;
		r.ns = fs->o->ns;
		r.shares = "";
		ret = cfs_record_write(fs->d->store_dir, &r);
	}
	while (views) {
		struct cfs_view *v = views;

		views = v->next;
		if (!ret) {
			snprintf(r.id, sizeof(r.id), "%s", v->id);
			r.mountpoint = v->mountpoint;
			r.source = v->source;
			r.ns = v->ns;
			r.shares = fs->id;
			ret = cfs_record_write(fs->d->store_dir, &r);
		}
		free(v->mountpoint);
		free(v->source);
		free(v);
	}
	pthread_mutex_unlock(&fs->record_lock);
	free(r.leases);
	return ret;
}

int cfs_mount_record(struct cfs *fs)
{
	return record_write(fs, NULL);
}

int cfs_mount_record_view(struct cfs *fs, const char *view_id)
{
	return record_write(fs, view_id);
}

void cfs_mount_unrecord(struct cfs *fs)
{
	pthread_mutex_lock(&fs->record_lock);
	fs->unrecorded = true;
	pthread_mutex_unlock(&fs->record_lock);
	pthread_mutex_lock(&fs->d->mounts_lock);
	cfs_record_remove(fs->d->store_dir, fs->id);
	for (struct cfs_view *v = fs->views; v; v = v->next)
		cfs_record_remove(fs->d->store_dir, v->id);
	pthread_mutex_unlock(&fs->d->mounts_lock);
}

json_object *cfs_mount_stats(struct cfs *fs)
{
	struct cfs_cache_stats cs;
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (!o)
		return NULL;
	cfs_cache_stats(fs->d->cache, &cs);
	pthread_rwlock_rdlock(&fs->switch_lock);
	cairn_id_hex(&fs->image, hex);
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)fs->generation));
	pthread_rwlock_unlock(&fs->switch_lock);
	json_object_object_add(o, "id", json_object_new_string(fs->id));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "mountpoint", json_object_new_string(fs->o->mountpoint));
	json_object_object_add(o, "image", json_object_new_string(hex));
	/* the cache is the daemon's: every mount it serves shares these */
	json_object_object_add(o, "hits", json_object_new_int64((int64_t)cs.hits));
	json_object_object_add(o, "misses", json_object_new_int64((int64_t)cs.misses));
	json_object_object_add(o, "evictions", json_object_new_int64((int64_t)cs.evictions));
	json_object_object_add(o, "inserts", json_object_new_int64((int64_t)cs.inserts));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)cs.bytes));
	json_object_object_add(o, "entries", json_object_new_int64((int64_t)cs.entries));
	json_object_object_add(o, "max_bytes", json_object_new_int64((int64_t)cs.max_bytes));
	json_object_object_add(o, "reads", json_object_new_int64((int64_t)atomic_load(&fs->reads)));
	json_object_object_add(o, "prefetches",
			       json_object_new_int64((int64_t)atomic_load(&fs->prefetches)));
	json_object_object_add(o, "io_errors", json_object_new_int64((int64_t)atomic_load(&fs->eio)));
	{
		/* lazily pulled chunks (store/lazy.h), the daemon's for every mount */
		struct cairn_lazy_stats ls;

		cairn_lazy_stats(fs->d->store, &ls);
		json_object_object_add(o, "lazy_fetches", json_object_new_int64((int64_t)ls.fetches));
		json_object_object_add(o, "lazy_fetch_bytes",
				       json_object_new_int64((int64_t)ls.fetch_bytes));
		json_object_object_add(o, "lazy_failures", json_object_new_int64((int64_t)ls.failures));
		json_object_object_add(o, "lazy_waits", json_object_new_int64((int64_t)ls.waits));
		json_object_object_add(o, "lazy_prefetches",
				       json_object_new_int64((int64_t)ls.prefetches));
		json_object_object_add(o, "lazy_kept", json_object_new_int64((int64_t)ls.kept));
	}
	pthread_mutex_lock(&fs->itable_lock);
	json_object_object_add(o, "inodes", json_object_new_int64((int64_t)fs->ninodes));
	json_object_object_add(o, "inode_budget", json_object_new_int64((int64_t)fs->inode_budget));
	json_object_object_add(o, "inode_budget_enforced", json_object_new_boolean(fs->prune >= 0));
	json_object_object_add(o, "inode_trims",
			       json_object_new_int64((int64_t)atomic_load(&fs->trims)));
	json_object_object_add(o, "inode_prune_asks",
			       json_object_new_int64((int64_t)atomic_load(&fs->prune_asks)));
	{
		size_t n = 0;

		for (struct cfs_lease *l = fs->leases.list; l; l = l->next)
			n++;
		json_object_object_add(o, "leases", json_object_new_int64((int64_t)n));
	}
	if (fs->upper) {
		json_object_object_add(o, "fds", json_object_new_int64((int64_t)fs->fds.open));
		json_object_object_add(o, "fd_budget", json_object_new_int64((int64_t)fs->fds.budget));
		json_object_object_add(o, "fd_reopens",
				       json_object_new_int64((int64_t)atomic_load(&fs->fds.reopens)));
		json_object_object_add(o, "fd_closes",
				       json_object_new_int64((int64_t)atomic_load(&fs->fds.closes)));
	}
	pthread_mutex_unlock(&fs->itable_lock);
	pthread_mutex_lock(&fs->d->mounts_lock);
	json_object_object_add(o, "mounts", json_object_new_int64((int64_t)fs->d->nmounts));
	pthread_mutex_unlock(&fs->d->mounts_lock);
	json_object_object_add(o, "threads", json_object_new_int64((int64_t)fs->d->nworkers));
	return o;
}
