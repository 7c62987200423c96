/* SPDX-License-Identifier: MIT */
/*
 * serve.c - one mount's life: open the store, mount, say so, register,
 * serve on a multi-threaded loop, clean up.
 *
 * A running mount is visible to other cairn commands through two files in
 * STORE/run: PID.json (what it serves, where) and PID.sock, a control
 * socket answering "stats" with the mount's counters as JSON. Both go away
 * when the daemon exits; a record whose process is gone is stale and
 * readers remove it.
 */
#include <fcntl.h>
#include <malloc.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>

#include "fs-internal.h"
#include "image.h"

int cfs_run_dir(const char *store_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/run", store_dir);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

struct control {
	struct cfs *fs;
	int sock;
	pthread_t thread;
	bool running;
	pthread_mutex_t record_lock; /* one writer of the record at a time */
	bool stopped;                /* the record is gone for good; record_lock */
	char sock_path[108];
	char record_path[4096];
};

static json_object *stats_json(struct cfs *fs)
{
	struct cfs_cache_stats cs;
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1];

	cfs_cache_stats(fs->cache, &cs);
	pthread_rwlock_rdlock(&fs->switch_lock);
	cairn_id_hex(&fs->image, hex);
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)fs->generation));
	pthread_rwlock_unlock(&fs->switch_lock);
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "mountpoint", json_object_new_string(fs->o->mountpoint));
	json_object_object_add(o, "image", json_object_new_string(hex));
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
	pthread_mutex_lock(&fs->itable_lock);
	json_object_object_add(o, "inodes", json_object_new_int64((int64_t)fs->ninodes));
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
	return o;
}

static int write_record(struct control *c, const char *run);

/* Answers one request per connection: "stats" or "switch". */
static void *control_main(void *arg)
{
	struct control *c = arg;

	for (;;) {
		char req[64];
		ssize_t n;
		int fd = accept4(c->sock, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break; /* the socket was shut down: we are exiting */
		}
		n = read(fd, req, sizeof(req) - 1);
		if (n > 0) {
			req[n] = '\0';
			if (strncmp(req, "switch", 6) == 0) {
				char reply[512];
				char run[4096];

				cfs_switch(c->fs, reply, sizeof(reply));
				if (strncmp(reply, "switched", 8) == 0 &&
				    cfs_run_dir(c->fs->o->store_dir, run, sizeof(run)) == 0) {
					atomic_store(&c->fs->leases.dirty, false);
					write_record(c, run);
				}
				if (write(fd, reply, strlen(reply)) < 0)
					cfs_log(c->fs, LOG_DEBUG, "a switch requester went away");
			} else if (strncmp(req, "stats", 5) == 0) {
				json_object *o = stats_json(c->fs);
				const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

				if (write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0)
					cfs_log(c->fs, LOG_DEBUG, "a stats reader went away");
				json_object_put(o);
			} else {
				static const char unknown[] = "{\"error\":\"unknown request\"}\n";

				if (write(fd, unknown, sizeof(unknown) - 1) < 0)
					cfs_log(c->fs, LOG_DEBUG, "a control client went away");
			}
		}
		close(fd);
	}
	return NULL;
}

static int write_record_locked(struct control *c, const char *run);

/* Writes run/PID.json: what the mount serves and the images it leases. */
static int write_record(struct control *c, const char *run)
{
	int ret = 0;

	pthread_mutex_lock(&c->record_lock);
	if (!c->stopped)
		ret = write_record_locked(c, run);
	pthread_mutex_unlock(&c->record_lock);
	return ret;
}

/* The leases changed (an old image's last inode was forgotten): the record again. */
static void record_publish(void *arg)
{
	struct control *c = arg;
	char run[4096];

	if (c->record_path[0] && cfs_run_dir(c->fs->o->store_dir, run, sizeof(run)) == 0)
		write_record(c, run);
}

static int write_record_locked(struct control *c, const char *run)
{
	struct cfs *fs = c->fs;
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1], tmp[sizeof(c->record_path) + 8];
	struct cairn_id *leased = NULL;
	size_t nleased;
	uint64_t generation;
	const char *s;
	FILE *f;
	int fd;

	pthread_rwlock_rdlock(&fs->switch_lock);
	cairn_id_hex(&fs->image, hex);
	generation = fs->generation;
	pthread_rwlock_unlock(&fs->switch_lock);
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "mountpoint", json_object_new_string(fs->o->mountpoint));
	json_object_object_add(o, "source", json_object_new_string(fs->o->source));
	json_object_object_add(o, "image", json_object_new_string(hex));
	json_object_object_add(o, "platform", json_object_new_string(fs->o->platform ?
								       fs->o->platform : ""));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)generation));
	json_object_object_add(o, "socket", json_object_new_string(c->sock_path));
	json_object_object_add(o, "upper", fs->o->upper_dir ?
				   json_object_new_string(fs->o->upper_dir) : NULL);
	{
		/* the image served first, then every other one inodes still read */
		json_object *leases = json_object_new_array();

		json_object_array_add(leases, json_object_new_string(hex));
		nleased = cfs_leases_get(fs, &leased);
		for (size_t i = 0; i < nleased; i++) {
			char h2[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&leased[i], h2);
			if (strcmp(h2, hex) != 0)
				json_object_array_add(leases, json_object_new_string(h2));
		}
		free(leased);
		json_object_object_add(o, "leases", leases);
	}
	json_object_object_add(o, "started_ns", json_object_new_int64(cairn_now_ns()));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (snprintf(c->record_path, sizeof(c->record_path), "%s/%d.json", run, (int)getpid()) >=
		    (int)sizeof(c->record_path) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", c->record_path) >= (int)sizeof(tmp)) {
		json_object_put(o);
		c->record_path[0] = '\0';
		return -ENAMETOOLONG;
	}
	/* 0600 whatever the umask (the daemon's is 0): store files are private */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f && fd >= 0)
		close(fd);
	if (!f || fprintf(f, "%s\n", s) < 0 || fclose(f) != 0 || rename(tmp, c->record_path) < 0) {
		json_object_put(o);
		c->record_path[0] = '\0';
		return -errno;
	}
	json_object_put(o);
	return 0;
}

static int control_start(struct control *c, struct cfs *fs)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char run[4096];
	int ret = cfs_run_dir(fs->o->store_dir, run, sizeof(run));

	c->fs = fs;
	c->sock = -1;
	if (ret)
		return ret;
	if (snprintf(c->sock_path, sizeof(c->sock_path), "%s/%d.sock", run, (int)getpid()) >=
	    (int)sizeof(c->sock_path)) {
		/* a deep store path: the socket goes in the abstract namespace */
		snprintf(c->sock_path, sizeof(c->sock_path), "@cairn-%d", (int)getpid());
	}
	c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->sock < 0)
		return -errno;
	memcpy(addr.sun_path, c->sock_path, strlen(c->sock_path));
	if (c->sock_path[0] == '@')
		addr.sun_path[0] = '\0';
	else
		unlink(c->sock_path);
	if (bind(c->sock, (struct sockaddr *)&addr,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(c->sock_path))) < 0 ||
	    (c->sock_path[0] != '@' && chmod(c->sock_path, 0600) < 0) || listen(c->sock, 16) < 0) {
		ret = -errno;
		close(c->sock);
		c->sock = -1;
		return ret;
	}
	if (pthread_create(&c->thread, NULL, control_main, c) == 0)
		c->running = true;
	return write_record(c, run);
}

static void control_stop(struct control *c)
{
	pthread_mutex_lock(&c->record_lock);
	c->stopped = true;
	if (c->record_path[0])
		unlink(c->record_path);
	pthread_mutex_unlock(&c->record_lock);
	if (c->sock >= 0) {
		shutdown(c->sock, SHUT_RDWR);
		if (c->running)
			pthread_join(c->thread, NULL);
		close(c->sock);
		if (c->sock_path[0] != '@')
			unlink(c->sock_path);
	}
}

static void ready(int *fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ready(int *fd, const char *fmt, ...)
{
	char line[1100];
	va_list ap;
	int n;

	if (*fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(*fd, line, strlen(line)) < 0)
		n = -1; /* the caller is gone; nothing else to tell */
	close(*fd);
	*fd = -1;
}

/*
 * A shard keeps at least two of the largest chunks (4 MiB), or chunks
 * that big would never stay cached; up to 16 shards spread the locks.
 */
static unsigned cache_shards(size_t bytes)
{
	unsigned n = 1;

	while (n < 16 && bytes / (n * 2) >= 2 * CAIRN_CHUNK_MAX_LIMIT)
		n *= 2;
	return n;
}

/*
 * A writable mount keeps upper fds within a budget of half its limit
 * (rw-fds.c): the higher the limit, the fewer reopens. Root may raise its
 * limit to the system's.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long max = 1u << 20;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &max) != 1)
			max = 1u << 20;
		fclose(f);
	}
	rl.rlim_cur = rl.rlim_max = max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Opens the store and the image; the root inode. */
static int setup(struct cfs *fs, const struct cfs_options *o)
{
	struct cairn_image img;
	struct cairn_txn *t;
	struct cairn_node_view v;
	int ret;

	fs->o = o;
	fs->timeout = 86400.0;
	fs->image = o->image;
	{
		pthread_rwlockattr_t a;

		/* a switch must not starve behind a steady stream of reads */
		pthread_rwlockattr_init(&a);
		pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&fs->switch_lock, &a);
		pthread_rwlockattr_destroy(&a);
	}
	/* writable for one transaction: the hold on what it serves (cfs_serve) */
	ret = cairn_store_open(o->store_dir, 0, NULL, &fs->store);
	if (ret)
		return cairn_err(ret, "cannot open store '%s': %s", o->store_dir, cairn_errmsg());
	ret = cairn_txn_begin(fs->store, false, &t);
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
	pthread_mutex_init(&fs->decoding_lock, NULL);
	pthread_cond_init(&fs->decoded, NULL);
	pthread_mutex_init(&fs->ns_lock, NULL);
	if (o->upper_dir) {
		ret = cfs_upper_open(o->upper_dir, &o->image, o->platform, &fs->upper);
		if (ret) {
			cairn_txn_abort(t);
			return ret;
		}
		fs->nkbuckets = 1u << 16;
		fs->kbuckets = calloc(fs->nkbuckets, sizeof(*fs->kbuckets));
		if (!fs->kbuckets) {
			cairn_txn_abort(t);
			return -ENOMEM;
		}
		/* the mode a caller asks for is the mode it gets: the kernel applied its umask */
		umask(0);
		raise_nofile();
		cfs_rw_fds_init(fs);
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
		ret = cfs_cache_new(o->cache_bytes, cache_shards(o->cache_bytes), &fs->cache);
	if (!ret && pthread_key_create(&fs->thread_key, cfs_thread_free))
		ret = -EAGAIN;
	fs->zeros = ret ? NULL : calloc(1, CFS_MAX_READ);
	if (!ret && !fs->zeros)
		ret = -ENOMEM;
	if (!ret)
		ret = cfs_leases_init(fs);
	if (!ret)
		ret = cfs_inode_root(fs, &v);
	cairn_txn_abort(t);
	return ret;
}

int cfs_serve(const struct cfs_options *o, int ready_fd)
{
	struct cfs fs = { 0 };
	struct control ctl = { .sock = -1, .record_lock = PTHREAD_MUTEX_INITIALIZER };
	struct fuse_loop_config *cfg = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char opts[4096];
	int ret;

	if (!o->foreground)
		openlog("cairn", LOG_PID, LOG_DAEMON);
	/*
	 * Chunk buffers are allocated by one thread and freed by another when
	 * evicted; glibc's per-thread arenas would each keep their own high-water
	 * mark (measured: twice the cache budget). One arena, chunk buffers from
	 * it rather than fresh mmaps (no page faults per decode), and libfuse's
	 * 1 MiB per-thread request buffers mapped on their own (only the pages
	 * a request touches count).
	 */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	ret = setup(&fs, o);
	if (ret) {
		ready(&ready_fd, "%s\n", cairn_errmsg());
		goto out;
	}
	snprintf(opts, sizeof(opts),
		 "fsname=cairn,subtype=cairn,%s,allow_other,default_permissions,max_read=%u,%s,%s%s%s",
		 o->upper_dir ? "rw" : "ro", CFS_MAX_READ,
		 o->nosuid ? "nosuid" : "suid", o->dev ? "dev" : "nodev",
		 o->fuse_opts ? "," : "", o->fuse_opts ? o->fuse_opts : "");
	if (fuse_opt_add_arg(&args, "cairn") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (o->debug && fuse_opt_add_arg(&args, "-d"))) {
		ret = -ENOMEM;
		ready(&ready_fd, "out of memory\n");
		goto out;
	}
	fs.se = o->upper_dir ? fuse_session_new(&args, &cfs_rw_ops, sizeof(cfs_rw_ops), &fs)
			     : fuse_session_new(&args, &cfs_ops, sizeof(cfs_ops), &fs);
	if (!fs.se) {
		ret = -EINVAL;
		ready(&ready_fd, "bad mount options '%s'\n", opts);
		goto out;
	}
	if (fuse_set_signal_handlers(fs.se) != 0) {
		ret = -EIO;
		ready(&ready_fd, "cannot set signal handlers\n");
		goto out_session;
	}
	if (fuse_session_mount(fs.se, o->mountpoint) != 0) {
		ret = -EIO;
		ready(&ready_fd, "the kernel refused the mount (see the line above, or syslog)\n");
		goto out_signals;
	}
	fs.leases.publish = record_publish;
	fs.leases.publish_arg = &ctl;
	ret = control_start(&ctl, &fs);
	if (ret)
		cfs_log(&fs, LOG_WARNING, "no control socket or mount record: %s", strerror(-ret));
	if (o->platform) {
		/*
		 * Registered first, then read the pointer: an upgrade that slipped
		 * in since the image was resolved is caught here, and any later
		 * one finds the record and tells us.
		 */
		char reply[256], run[4096];

		cfs_switch(&fs, reply, sizeof(reply));
		if (cfs_run_dir(o->store_dir, run, sizeof(run)) == 0 && ctl.record_path[0])
			write_record(&ctl, run);
	}
	/*
	 * Registered (the record lists what it serves as a lease): now the
	 * naming transaction of gc's protocol (gc.h). A gc that read the
	 * leases before the record existed marks again; an image it dropped
	 * meanwhile is not served.
	 */
	ret = cairn_image_hold(fs.store, &fs.image, 1);
	if (ret) {
		ready(&ready_fd, "%s\n", cairn_errmsg());
		goto out_unmount;
	}
	cfs_log(&fs, LOG_INFO, "serving %s", o->source);
	ready(&ready_fd, "ok\n");

	cfg = fuse_loop_cfg_create();
	if (!cfg) {
		ret = -ENOMEM;
		goto out_unmount;
	}
	fuse_loop_cfg_set_max_threads(cfg, 8);
	fuse_loop_cfg_set_idle_threads(cfg, 8); /* keep them: a new thread costs a fresh buffer */
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	ret = fuse_session_loop_mt(fs.se, cfg);
	ret = ret < 0 ? ret : 0;
	fuse_loop_cfg_destroy(cfg);
	cfs_log(&fs, LOG_INFO, "unmounted");
out_unmount:
	control_stop(&ctl);
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out:
	fuse_opt_free_args(&args);
	if (fs.buckets)
		cfs_itable_release(&fs);
	cfs_leases_release(&fs);
	if (fs.cache) {
		void *t = pthread_getspecific(fs.thread_key);

		cfs_thread_free(t);
		pthread_key_delete(fs.thread_key);
		cfs_cache_free(fs.cache);
	}
	free(fs.zeros);
	free(fs.kbuckets);
	cfs_rw_fds_release(&fs);
	cfs_upper_close(fs.upper);
	pthread_mutex_destroy(&fs.ns_lock);
	pthread_cond_destroy(&fs.decoded);
	pthread_mutex_destroy(&fs.decoding_lock);
	pthread_rwlock_destroy(&fs.switch_lock);
	cairn_store_close(fs.store);
	ready(&ready_fd, "%s\n", ret ? "failed" : "ok");
	return ret;
}
