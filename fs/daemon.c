/* SPDX-License-Identifier: MIT */
/*
 * daemon.c - one daemon per store: the worker pool over every mount's FUSE
 * session, the control socket, the daemon's start and end.
 *
 * The loop. Every mount's /dev/fuse fd sits in one epoll set with
 * EPOLLONESHOT; a fixed pool of workers waits on it. A worker that gets a
 * mount reads one request (fuse_session_receive_buf), re-arms the fd at
 * once so another worker may take the mount's next request, and answers
 * (fuse_session_process_buf). A mount with its budget of requests in
 * flight is not re-armed until one of them is answered: a mount whose
 * upper directory hangs holds at most its budget of workers, and the
 * others keep serving every other mount. The number of threads does not
 * grow with the number of mounts.
 *
 * A mount ends when its connection does (the kernel's ENODEV after the
 * last unmount): the worker that reads the end takes it out of the set
 * and the list; the last reference (a request still being answered, a
 * control user) frees it.
 */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include "fs-internal.h"
#include "image.h"

void cfs_daemon_log(struct cfs_daemon *d, int prio, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->foreground)
		fprintf(stderr, "cairn: %s\n", msg);
	else
		syslog(prio, "%s", msg);
}

/* What a chunk source tells of failures nobody waits for (a batch it could not keep). */
static void daemon_background_log(void *arg, const char *msg)
{
	cfs_daemon_log(arg, LOG_WARNING, "%s", msg);
}

void cfs_mount_ref(struct cfs *fs)
{
	atomic_fetch_add(&fs->refs, 1);
}

void cfs_mount_unref(struct cfs *fs)
{
	if (atomic_fetch_sub(&fs->refs, 1) == 1)
		cfs_mount_free(fs);
}

/* Arms the mount's fd for one more request (loop_lock held). */
static void arm_locked(struct cfs *fs)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = fs };

	if (epoll_ctl(fs->d->epfd, EPOLL_CTL_MOD, fs->fd, &ev) < 0)
		cfs_log(fs, LOG_ERR, "cannot re-arm the FUSE connection: %s", strerror(errno));
}

static void rebudget(struct cfs_daemon *d);
static struct cfs **mounts_ref(struct cfs_daemon *d, bool (*keep)(struct cfs *, const void *),
			       const void *arg, size_t *n);
static void mounts_unref(struct cfs **v, size_t n);

/*
 * Takes fs out of the epoll set and the daemon's list, once: false if it
 * was out already. The list's reference is the caller's to drop.
 */
static bool unlist(struct cfs *fs)
{
	struct cfs_daemon *d = fs->d;

	pthread_mutex_lock(&fs->loop_lock);
	if (fs->gone) {
		pthread_mutex_unlock(&fs->loop_lock);
		return false;
	}
	fs->gone = true;
	pthread_mutex_unlock(&fs->loop_lock);
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, fs->fd, NULL);
	pthread_mutex_lock(&d->mounts_lock);
	for (struct cfs **pp = &d->mounts; *pp; pp = &(*pp)->next) {
		if (*pp == fs) {
			*pp = fs->next;
			d->nmounts--;
			break;
		}
	}
	pthread_cond_broadcast(&d->mounts_cond);
	pthread_mutex_unlock(&d->mounts_lock);
	return true;
}

/* The connection ended: out of the set and the list (the list's reference dropped). */
static void mount_gone(struct cfs *fs)
{
	struct cfs_daemon *d = fs->d;

	if (!unlist(fs))
		return;
	cfs_mount_unrecord(fs);
	cfs_log(fs, LOG_INFO, "unmounted");
	cfs_mount_unref(fs);
	rebudget(d);
}

/* Keeps the INIT a connection begins with: a new daemon gives it to its session again. */
static void keep_init(struct cfs *fs, const struct fuse_buf *buf)
{
	struct fuse_in_header h;
	void *copy;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(h))
		return;
	memcpy(&h, buf->mem, sizeof(h));
	if (h.opcode != FUSE_INIT || h.len > buf->size)
		return;
	copy = malloc(h.len);
	if (!copy)
		return; /* this mount cannot be handed over, it says so then */
	memcpy(copy, buf->mem, h.len);
	fs->init = copy;
	fs->init_len = h.len;
}

/*
 * The trim timer. A mount over its inode budget is trimmed after its
 * requests; when they stop (a tenant floods, then goes quiet) the timer
 * trims it again until it is within budget. One-shot in the epoll set:
 * one worker takes each expiry.
 */
#define CFS_TRIM_LATER_NS 100000000

void cfs_daemon_trim_later(struct cfs_daemon *d, int64_t delay_ns)
{
	int64_t delay = delay_ns > CFS_TRIM_LATER_NS ? delay_ns : CFS_TRIM_LATER_NS;
	int64_t due = cairn_now_ns() + delay, cur = atomic_load(&d->trim_due);
	struct itimerspec t = { .it_value = { delay / 1000000000, delay % 1000000000 } };

	if (d->trim_fd < 0)
		return;
	/* set already to fire sooner: that one will do */
	do
		if (cur && cur <= due)
			return;
	while (!atomic_compare_exchange_weak(&d->trim_due, &cur, due));
	if (timerfd_settime(d->trim_fd, 0, &t, NULL) < 0) {
		atomic_store(&d->trim_due, 0);
		cfs_daemon_log(d, LOG_ERR, "cannot set the trim timer: %s", strerror(errno));
	}
}

static bool over_budget(struct cfs *fs, const void *arg)
{
	(void)arg;
	return atomic_load(&fs->over_budget);
}

static void trim_due(struct cfs_daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = d };
	uint64_t expiries;
	struct cfs **v;
	size_t n;

	if (read(d->trim_fd, &expiries, sizeof(expiries)) < 0 && errno != EAGAIN)
		cfs_daemon_log(d, LOG_ERR, "reading the trim timer: %s", strerror(errno));
	atomic_store(&d->trim_due, 0);
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, d->trim_fd, &ev) < 0)
		cfs_daemon_log(d, LOG_ERR, "cannot re-arm the trim timer: %s", strerror(errno));
	v = mounts_ref(d, over_budget, NULL, &n);
	for (size_t i = 0; i < n; i++) {
		bool live;

		pthread_mutex_lock(&v[i]->loop_lock);
		live = !v[i]->gone && !v[i]->frozen;
		pthread_mutex_unlock(&v[i]->loop_lock);
		if (live)
			cfs_itable_trim(v[i]); /* sets the timer again while still over */
	}
	mounts_unref(v, n);
}

static void *worker_main(void *arg)
{
	struct cfs_daemon *d = arg;
	struct fuse_buf buf = { .mem = malloc(CFS_REQ_BUF), .size = CFS_REQ_BUF };

	if (!buf.mem) {
		cfs_daemon_log(d, LOG_CRIT, "a worker has no memory for its request buffer");
		return NULL;
	}
	for (;;) {
		struct epoll_event ev;
		struct cfs *fs;
		int n = epoll_wait(d->epfd, &ev, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cfs_daemon_log(d, LOG_CRIT, "epoll_wait: %s", strerror(errno));
			break;
		}
		if (n == 0)
			continue;
		if (ev.data.ptr == d) {
			trim_due(d);
			continue;
		}
		fs = ev.data.ptr;
		if (!fs)
			break; /* wake_fd: the daemon is stopping */
		cfs_mount_ref(fs);
		pthread_mutex_lock(&fs->loop_lock);
		if (fs->frozen) {
			/* a handover takes it: the request stays queued for the new daemon */
			pthread_mutex_unlock(&fs->loop_lock);
			cfs_mount_unref(fs);
			continue;
		}
		fs->reading = true;
		pthread_mutex_unlock(&fs->loop_lock);
		buf.flags = 0;
		buf.size = CFS_REQ_BUF;
		n = fuse_session_receive_buf(fs->se, &buf);
		if (n > 0 && !fs->init_len)
			keep_init(fs, &buf);
		if (n > 0) {
			pthread_mutex_lock(&fs->loop_lock);
			fs->reading = false;
			if (++fs->inflight < fs->d->budget && !fs->frozen)
				arm_locked(fs);
			else
				fs->parked = true; /* re-armed when one is answered */
			pthread_mutex_unlock(&fs->loop_lock);

			fuse_session_process_buf(fs->se, &buf);
			if (atomic_load(&fs->over_budget))
				cfs_itable_trim(fs);

			pthread_mutex_lock(&fs->loop_lock);
			fs->inflight--;
			if (fs->parked && !fs->gone && !fs->frozen) {
				fs->parked = false;
				arm_locked(fs);
			}
			pthread_mutex_unlock(&fs->loop_lock);
		} else if (n == -EINTR || n == -EAGAIN) {
			pthread_mutex_lock(&fs->loop_lock);
			fs->reading = false;
			if (!fs->gone && !fs->frozen)
				arm_locked(fs);
			pthread_mutex_unlock(&fs->loop_lock);
		} else {
			pthread_mutex_lock(&fs->loop_lock);
			fs->reading = false;
			pthread_mutex_unlock(&fs->loop_lock);
			if (n < 0)
				cfs_log(fs, LOG_ERR, "reading the FUSE connection: %s", strerror(-n));
			mount_gone(fs);
		}
		cfs_mount_unref(fs);
	}
	free(buf.mem);
	return NULL;
}

/* --- mounts -------------------------------------------------------------- */

static int serve(struct cfs_daemon *d, struct cfs *fs);

int cfs_daemon_mount(struct cfs_daemon *d, const struct cfs_options *o, int fd, char *id,
		     size_t idlen)
{
	struct cfs *fs;
	char mid[32];
	int ret, flags;

	pthread_mutex_lock(&d->mounts_lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->mounts_lock);
		close(fd);
		return cairn_err(-ESHUTDOWN, "the daemon is stopping");
	}
	snprintf(mid, sizeof(mid), "%d-%llu", (int)getpid(), (unsigned long long)++d->next_id);
	pthread_mutex_unlock(&d->mounts_lock);
	/* a worker never blocks on a connection epoll woke it for in vain */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		ret = -errno;
		close(fd);
		return cairn_err(ret, "the FUSE connection handed over is not usable");
	}
	ret = cfs_mount_new(d, o, fd, mid, &fs);
	if (ret) {
		close(fd);
		return ret;
	}
	/*
	 * Registered first (its record holds the lease on the image), then
	 * the platform's pointer is read: an upgrade that slipped in since the
	 * command resolved the image is caught here, and any later one finds
	 * the record and tells us.
	 */
	ret = cfs_mount_record(fs);
	if (ret) {
		cfs_mount_free(fs);
		return cairn_err(ret, "cannot write the mount's record: %s", strerror(-ret));
	}
	/*
	 * Registered (the record lists what it serves as a lease): now the
	 * naming transaction of gc's protocol (gc.h). A gc that read the
	 * leases before the record existed marks again; an image it dropped
	 * meanwhile is not served.
	 */
	ret = cairn_image_hold(d->store, &fs->image, 1);
	if (ret) {
		/* (its message says which image gc took) */
		cfs_mount_unrecord(fs);
		cfs_mount_free(fs);
		return ret;
	}
	if (fs->o->platform) {
		struct cfs_switch_memo *memo = cfs_switch_memo_new();
		char reply[256];

		if (memo && cfs_switch(fs, memo, reply, sizeof(reply)) == 0) {
			atomic_store(&fs->leases.dirty, false);
			cfs_mount_record(fs);
		}
		cfs_switch_memo_free(memo);
	}
	ret = serve(d, fs);
	if (ret) {
		cfs_record_remove(d->store_dir, fs->id);
		cfs_mount_unref(fs);
		return cairn_err(ret, "cannot watch the FUSE connection: %s", strerror(-ret));
	}
	rebudget(d);
	cfs_log(fs, LOG_INFO, "serving %s", fs->o->source);
	snprintf(id, idlen, "%s", mid);
	return 0;
}

/*
 * The writable mounts' fd budgets (rw-fds.c): the daemon's half of its fd
 * limit shared among them, so that one container's files cannot take the
 * fds every other mount needs. A mount's share is at most 65536 and at
 * least 256; up to 8 mounts each get an eighth (or all of it, alone in an
 * isolated daemon); CAIRN_FD_BUDGET lowers it.
 */
static void rebudget(struct cfs_daemon *d)
{
	struct rlimit rl;
	unsigned long pool = 1024, share;
	const char *env = getenv("CAIRN_FD_BUDGET");
	unsigned nrw = 0;
	struct cfs **v;
	size_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		pool = rl.rlim_cur / 2;
	v = mounts_ref(d, NULL, NULL, &n);
	for (size_t i = 0; v && i < n; i++)
		nrw += v[i]->upper != NULL;
	share = pool / (d->isolated ? 1 : nrw > 8 ? nrw : 8);
	if (share > 65536)
		share = 65536;
	if (env && *env) {
		char *end;
		unsigned long e = strtoul(env, &end, 10);

		if (!*end && e < share)
			share = e;
	}
	if (share < 256)
		share = 256;
	for (size_t i = 0; v && i < n; i++) {
		if (!v[i]->upper)
			continue;
		pthread_mutex_lock(&v[i]->itable_lock);
		v[i]->fds.budget = share;
		pthread_mutex_unlock(&v[i]->itable_lock);
	}
	mounts_unref(v, n);
}

/* Into the list and the workers' set; -errno (and out of the list again) when epoll refuses. */
static int serve(struct cfs_daemon *d, struct cfs *fs)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = fs };
	int ret = 0;

	pthread_mutex_lock(&d->mounts_lock);
	fs->next = d->mounts;
	d->mounts = fs;
	d->nmounts++;
	pthread_mutex_unlock(&d->mounts_lock);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fs->fd, &ev) < 0) {
		ret = -errno;
		fs->gone = true;
		pthread_mutex_lock(&d->mounts_lock);
		for (struct cfs **pp = &d->mounts; *pp; pp = &(*pp)->next) {
			if (*pp == fs) {
				*pp = fs->next;
				d->nmounts--;
				break;
			}
		}
		pthread_mutex_unlock(&d->mounts_lock);
	}
	return ret;
}

void cfs_daemon_serve_mount(struct cfs_daemon *d, struct cfs *fs)
{
	int ret = serve(d, fs);

	if (ret) {
		cfs_log(fs, LOG_CRIT, "cannot watch the handed-over FUSE connection: %s; it ends",
			strerror(-ret));
		cfs_mount_unrecord(fs);
		cfs_mount_unref(fs);
		return;
	}
	rebudget(d);
	cfs_log(fs, LOG_INFO, "serving %s (handed over)", fs->o->source);
}

void cfs_mount_let_go(struct cfs *fs)
{
	bool listed = unlist(fs);

	pthread_mutex_lock(&fs->record_lock);
	fs->unrecorded = true; /* its records are the new daemon's now: never written again here */
	pthread_mutex_unlock(&fs->record_lock);
	if (listed)
		cfs_mount_unref(fs); /* the list's (a connection that ended meanwhile dropped it) */
}

/*
 * The live mounts for which keep() says yes, referenced (cfs_mount_unref()
 * each, then free the array). *n is how many.
 */
static struct cfs **mounts_ref(struct cfs_daemon *d, bool (*keep)(struct cfs *, const void *),
			       const void *arg, size_t *n)
{
	struct cfs **v;
	size_t k = 0;

	pthread_mutex_lock(&d->mounts_lock);
	v = calloc(d->nmounts ? d->nmounts : 1, sizeof(*v));
	for (struct cfs *fs = d->mounts; v && fs; fs = fs->next) {
		if (keep && !keep(fs, arg))
			continue;
		cfs_mount_ref(fs);
		v[k++] = fs;
	}
	pthread_mutex_unlock(&d->mounts_lock);
	*n = k;
	return v;
}

static void mounts_unref(struct cfs **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cfs_mount_unref(v[i]);
	free(v);
}

struct cfs **cfs_mounts_ref(struct cfs_daemon *d, size_t *n)
{
	return mounts_ref(d, NULL, NULL, n);
}

void cfs_mounts_unref(struct cfs **v, size_t n)
{
	mounts_unref(v, n);
}

static bool follows(struct cfs *fs, const void *arg)
{
	return fs->o->platform != NULL;
}

void cfs_daemon_follow_platforms(struct cfs_daemon *d)
{
	struct cfs_switch_memo *memo = cfs_switch_memo_new();
	struct cfs **v;
	size_t n;

	pthread_mutex_lock(&d->switch_mutex);
	v = mounts_ref(d, follows, NULL, &n);
	for (size_t i = 0; v && memo && i < n; i++) {
		char reply[256];

		if (cfs_switch(v[i], memo, reply, sizeof(reply)) == 0 &&
		    strncmp(reply, "switched", 8) == 0) {
			atomic_store(&v[i]->leases.dirty, false);
			cfs_mount_record(v[i]);
		}
	}
	pthread_mutex_unlock(&d->switch_mutex);
	mounts_unref(v, n);
	cfs_switch_memo_free(memo);
}

static bool of_platform(struct cfs *fs, const void *name)
{
	return fs->o->platform && strcmp(fs->o->platform, name) == 0;
}

/* The mount whose record (its own or a bind's) is id, referenced; NULL if none. */
static struct cfs *mount_by_id(struct cfs_daemon *d, const char *id)
{
	struct cfs *found = NULL;

	pthread_mutex_lock(&d->mounts_lock);
	for (struct cfs *fs = d->mounts; fs && !found; fs = fs->next) {
		if (strcmp(fs->id, id) == 0)
			found = fs;
		for (struct cfs_view *v = fs->views; v && !found; v = v->next)
			if (strcmp(v->id, id) == 0)
				found = fs;
	}
	if (found)
		cfs_mount_ref(found);
	pthread_mutex_unlock(&d->mounts_lock);
	return found;
}

/* --- the control socket --------------------------------------------------- */

struct client {
	struct cfs_daemon *d;
	int sock;
};

static json_object *answer_hello(struct cfs_daemon *d)
{
	json_object *r = cfs_ctl_reply(NULL);

	if (!r)
		return NULL;
	json_object_object_add(r, "pid", json_object_new_int(getpid()));
	json_object_object_add(r, "version", json_object_new_string(CAIRN_VERSION));
	json_object_object_add(r, "isolated", json_object_new_boolean(d->isolated));
	pthread_mutex_lock(&d->mounts_lock);
	{
		int64_t points = 0;

		for (struct cfs *fs = d->mounts; fs; fs = fs->next) {
			points += !fs->primary_gone;
			for (struct cfs_view *v = fs->views; v; v = v->next)
				points++;
		}
		json_object_object_add(r, "mounts", json_object_new_int64(points));
	}
	json_object_object_add(r, "sessions", json_object_new_int64(d->nmounts));
	pthread_mutex_unlock(&d->mounts_lock);
	json_object_object_add(r, "threads", json_object_new_int64(d->nworkers));
	json_object_object_add(r, "cache_bytes", json_object_new_int64((int64_t)d->cache_bytes));
	return r;
}

static json_object *answer_mount(struct cfs_daemon *d, json_object *req, int *fds, unsigned nfds)
{
	struct cfs_options o;
	json_object *r;
	char id[32];
	int ret;

	if (nfds != 1)
		return cfs_ctl_reply("a mount request without its FUSE connection");
	ret = cfs_ctl_mount_options(req, &o);
	if (ret)
		return cfs_ctl_reply(cairn_errmsg());
	ret = cfs_daemon_mount(d, &o, fds[0], id, sizeof(id));
	fds[0] = -1; /* taken, closed on failure */
	if (ret)
		return cfs_ctl_reply(cairn_errmsg());
	r = cfs_ctl_reply(NULL);
	if (r) {
		json_object_object_add(r, "id", json_object_new_string(id));
		json_object_object_add(r, "pid", json_object_new_int(getpid()));
	}
	return r;
}

struct switch_work {
	struct cfs **v;
	size_t n;
	atomic_size_t next;
	struct cfs_switch_memo *memo;
};

static void *switch_worker(void *arg)
{
	struct switch_work *w = arg;
	size_t i;

	while ((i = atomic_fetch_add(&w->next, 1)) < w->n) {
		struct cfs *fs = w->v[i];

		if (!w->memo)
			snprintf(fs->switch_reply, sizeof(fs->switch_reply), "error out of memory");
		else
			cfs_switch(fs, w->memo, fs->switch_reply, sizeof(fs->switch_reply));
		fs->switch_reply[strcspn(fs->switch_reply, "\n")] = '\0';
		if (strncmp(fs->switch_reply, "switched", 8) == 0) {
			atomic_store(&fs->leases.dirty, false);
			cfs_mount_record(fs);
		}
	}
	return NULL;
}

/*
 * Switches the mounts v (one switch request: switch_mutex held) on up to 8
 * threads: a writable mount's switch waits on a synced write of its upper's
 * record, and mounts do not wait on each other's.
 */
static void switch_all(struct cfs **v, size_t n, struct cfs_switch_memo *memo)
{
	struct switch_work w = { .v = v, .n = n, .memo = memo };
	pthread_t th[8];
	unsigned k = 0;

	atomic_init(&w.next, 0);
	while (k + 1 < ARRAY_SIZE(th) && k + 1 < n && pthread_create(&th[k], NULL, switch_worker, &w) == 0)
		k++;
	switch_worker(&w);
	for (unsigned i = 0; i < k; i++)
		pthread_join(th[i], NULL);
}

/* One request for every mount of the platform: each re-reads the pointer and switches. */
static json_object *answer_switch(struct cfs_daemon *d, json_object *req)
{
	const char *platform = cfs_ctl_str(req, "platform");
	json_object *r = cfs_ctl_reply(NULL), *arr = json_object_new_array();
	int64_t t0 = cairn_now_ns();
	struct cfs_switch_memo *memo;
	struct cfs **v;
	size_t n;

	if (!r || !arr) {
		json_object_put(r);
		json_object_put(arr);
		return NULL;
	}
	pthread_mutex_lock(&d->switch_mutex);
	if (d->handed_over) {
		/* its new daemon read the pointer again after taking over */
		pthread_mutex_unlock(&d->switch_mutex);
		json_object_put(r);
		json_object_put(arr);
		return cfs_ctl_reply("the daemon was restarted meanwhile: its successor switched");
	}
	memo = cfs_switch_memo_new();
	v = mounts_ref(d, of_platform, platform, &n);
	if (v && n)
		switch_all(v, n, memo);
	for (size_t i = 0; v && i < n; i++) {
		json_object *m = json_object_new_object();
		const char *reply = v[i]->switch_reply;

		json_object_object_add(m, "id", json_object_new_string(v[i]->id));
		json_object_object_add(m, "pid", json_object_new_int(getpid()));
		json_object_object_add(m, "mountpoint", json_object_new_string(v[i]->o->mountpoint));
		json_object_object_add(m, "outcome", json_object_new_string(reply));
		/* the binds of its session switched with it */
		pthread_mutex_lock(&d->mounts_lock);
		if (v[i]->primary_gone)
			json_object_put(m);
		else
			json_object_array_add(arr, m);
		for (struct cfs_view *w = v[i]->views; w; w = w->next) {
			json_object *b = json_object_new_object();

			json_object_object_add(b, "id", json_object_new_string(w->id));
			json_object_object_add(b, "pid", json_object_new_int(getpid()));
			json_object_object_add(b, "mountpoint", json_object_new_string(w->mountpoint));
			json_object_object_add(b, "outcome", json_object_new_string(reply));
			json_object_array_add(arr, b);
		}
		pthread_mutex_unlock(&d->mounts_lock);
	}
	cfs_switch_memo_free(memo);
	pthread_mutex_unlock(&d->switch_mutex);
	mounts_unref(v, n);
	json_object_object_add(r, "mounts", arr);
	json_object_object_add(r, "ms", json_object_new_double((double)(cairn_now_ns() - t0) / 1e6));
	return r;
}

static json_object *answer_stats(struct cfs_daemon *d, json_object *req)
{
	struct cfs *fs = mount_by_id(d, cfs_ctl_str(req, "id"));
	json_object *r, *st;

	if (!fs)
		return cfs_ctl_reply("no such mount in this daemon");
	st = cfs_mount_stats(fs);
	cfs_mount_unref(fs);
	r = cfs_ctl_reply(NULL);
	if (r && st)
		json_object_object_add(r, "stats", st);
	else
		json_object_put(st);
	return r;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * share: a read-only mount of the same source and options that has a
 * mountpoint in the caller's mount namespace, for the caller to bind: its
 * session then serves both, with one page cache.
 */
static json_object *answer_share(struct cfs_daemon *d, json_object *req)
{
	struct cfs_options o;
	const char *mp = NULL;
	json_object *r;
	char id[32] = "";
	int ret = cfs_ctl_mount_options(req, &o);

	if (ret)
		return cfs_ctl_reply(cairn_errmsg());
	if (o.upper_dir)
		return cfs_ctl_reply("a writable mount has a session of its own");
	r = cfs_ctl_reply(NULL);
	if (!r)
		return NULL;
	pthread_mutex_lock(&d->mounts_lock);
	for (struct cfs *fs = d->mounts; fs && !mp; fs = fs->next) {
		bool pinned_same;

		if (fs->upper || fs->gone || fs->o->dev != o.dev || fs->o->nosuid != o.nosuid ||
		    !same_str(fs->o->fuse_opts, o.fuse_opts) || !same_str(fs->o->platform, o.platform))
			continue;
		pthread_rwlock_rdlock(&fs->switch_lock);
		pinned_same = o.platform || cairn_id_eq(&fs->image, &o.image);
		pthread_rwlock_unlock(&fs->switch_lock);
		if (!pinned_same)
			continue;
		if (!fs->primary_gone && fs->o->ns == o.ns) {
			mp = fs->o->mountpoint;
		} else {
			for (struct cfs_view *v = fs->views; v && !mp; v = v->next)
				if (v->ns == o.ns)
					mp = v->mountpoint;
		}
		if (mp) {
			json_object_object_add(r, "mountpoint", json_object_new_string(mp));
			snprintf(id, sizeof(id), "%s", fs->id);
		}
	}
	pthread_mutex_unlock(&d->mounts_lock);
	json_object_object_add(r, "id", json_object_new_string(id));
	return r;
}

/* bind: the caller bound the session of mount id at mountpoint: a record for it. */
static json_object *answer_bind(struct cfs_daemon *d, json_object *req)
{
	struct cfs *fs = mount_by_id(d, cfs_ctl_str(req, "id"));
	const char *mp = cfs_ctl_str(req, "mountpoint");
	struct cfs_view *v;
	char id[sizeof(v->id)], *at;
	json_object *r;
	int ret;

	if (!fs)
		return cfs_ctl_reply("the mount to share is gone");
	v = calloc(1, sizeof(*v));
	if (!v || mp[0] != '/' || !(v->mountpoint = strdup(mp)) ||
	    !(v->source = strdup(cfs_ctl_str(req, "source")))) {
		if (v)
			free(v->mountpoint);
		free(v);
		cfs_mount_unref(fs);
		return cfs_ctl_reply(mp[0] != '/' ? "a bind without an absolute mountpoint"
						  : "out of memory");
	}
	v->ns = (uint64_t)cfs_ctl_int(req, "ns");
	pthread_mutex_lock(&d->mounts_lock);
	snprintf(v->id, sizeof(v->id), "%d-%llu", (int)getpid(), (unsigned long long)++d->next_id);
	v->next = fs->views;
	fs->views = v;
	/* once listed, a forget may free v: what follows uses copies */
	memcpy(id, v->id, sizeof(id));
	at = strdup(v->mountpoint);
	pthread_mutex_unlock(&d->mounts_lock);
	ret = cfs_mount_record_view(fs, id);
	cfs_log(fs, LOG_INFO, "bound at %s (%s)", at ? at : "?", id);
	free(at);
	r = ret ? cfs_ctl_reply("cannot write the bind's record") : cfs_ctl_reply(NULL);
	if (r && !ret)
		json_object_object_add(r, "id", json_object_new_string(id));
	cfs_mount_unref(fs);
	return r;
}

/*
 * forget: the mountpoint of record id was unmounted. Its record goes if the
 * session has another one (which holds the leases); the last one stays
 * until the connection ends (a copy of the mount may live on in another
 * namespace).
 */
static json_object *answer_forget(struct cfs_daemon *d, json_object *req)
{
	const char *id = cfs_ctl_str(req, "id");
	struct cfs *fs = mount_by_id(d, id);
	bool removed = false;
	unsigned left;

	if (!fs)
		return cfs_ctl_reply(NULL); /* gone already */
	pthread_mutex_lock(&d->mounts_lock);
	left = !fs->primary_gone;
	for (struct cfs_view *v = fs->views; v; v = v->next)
		left++;
	if (left > 1) {
		if (strcmp(fs->id, id) == 0) {
			fs->primary_gone = true;
			removed = true;
		}
		for (struct cfs_view **pp = &fs->views; !removed && *pp; pp = &(*pp)->next) {
			if (strcmp((*pp)->id, id) == 0) {
				struct cfs_view *v = *pp;

				*pp = v->next;
				free(v->mountpoint);
				free(v->source);
				free(v);
				removed = true;
			}
		}
		if (removed)
			cfs_record_remove(d->store_dir, id);
	}
	pthread_mutex_unlock(&d->mounts_lock);
	cfs_mount_unref(fs);
	return cfs_ctl_reply(NULL);
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct cfs_daemon *d = c->d;
	int fds[CFS_CTL_MAX_FDS];
	unsigned nfds = 0;
	json_object *req = NULL, *reply = NULL;
	int ret = cfs_ctl_recv(c->sock, CFS_CTL_TIMEOUT_MS, &req, fds, &nfds, CFS_CTL_MAX_FDS);

	if (ret == -EPROTO) {
		reply = cfs_ctl_reply(cairn_errmsg());
	} else if (!ret) {
		const char *op = cfs_ctl_str(req, "op");

		if (strcmp(op, "hello") == 0)
			reply = answer_hello(d);
		else if (strcmp(op, "mount") == 0)
			reply = answer_mount(d, req, fds, nfds);
		else if (strcmp(op, "switch") == 0)
			reply = answer_switch(d, req);
		else if (strcmp(op, "stats") == 0)
			reply = answer_stats(d, req);
		else if (strcmp(op, "share") == 0)
			reply = answer_share(d, req);
		else if (strcmp(op, "bind") == 0)
			reply = answer_bind(d, req);
		else if (strcmp(op, "forget") == 0)
			reply = answer_forget(d, req);
		else if (strcmp(op, "handover") != 0)
			reply = cfs_ctl_reply("unknown request");
	}
	if (!ret && strcmp(cfs_ctl_str(req, "op"), "handover") == 0) {
		unsigned given = 0;

		json_object_put(reply);
		reply = NULL;
		ret = d->isolated ? cairn_err(-EPERM, "an isolated daemon does not hand over")
				  : cfs_handover_give(d, c->sock, &given);
		if (ret)
			reply = cfs_ctl_reply(cairn_errmsg());
		else
			cfs_daemon_log(d, LOG_INFO, "handed %u mounts over to a new daemon", given);
	}
	if (reply && cfs_ctl_send(c->sock, reply, NULL, 0))
		cfs_daemon_log(d, LOG_DEBUG, "a control client went away before its answer");
	json_object_put(reply);
	json_object_put(req);
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(c->sock);
	free(c);
	pthread_mutex_lock(&d->mounts_lock);
	d->nclients--;
	pthread_cond_broadcast(&d->mounts_cond);
	pthread_mutex_unlock(&d->mounts_lock);
	return NULL;
}

/*
 * Whether the process at the other end of a control connection may talk to
 * the daemon: root, the store's owner or the daemon's own user (SO_PEERCRED,
 * taken at connect). An abstract socket (a store path too deep for
 * sun_path) has no permissions at all, so this is what keeps other users
 * out there; on STORE/run/daemon.sock (0600 in a 0700 directory) it is
 * defence in depth.
 */
static bool peer_allowed(struct cfs_daemon *d, int fd)
{
	struct ucred cr;
	int ret = cfs_ctl_peer(fd, &cr);

	if (!ret && (cr.uid == 0 || cr.uid == d->owner || cr.uid == geteuid()))
		return true;
	if (ret)
		cfs_daemon_log(d, LOG_WARNING, "control connection refused: no credentials: %s",
			       strerror(-ret));
	else
		cfs_daemon_log(d, LOG_WARNING, "control connection refused: uid %u (pid %d) is "
			       "neither root nor the store's owner", (unsigned)cr.uid, (int)cr.pid);
	return false;
}

/*
 * One refusal (why), then the connection is closed. What the peer sent is read
 * first (without waiting): closing over unread data would make its read
 * fail (ECONNRESET) before it sees the answer.
 */
static void refuse(int fd, const char *why)
{
	json_object *r = cfs_ctl_reply(why);
	char buf[512];

	for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) > 0; i++)
		;
	/* into an empty socket buffer: it cannot block */
	if (r)
		cfs_ctl_send(fd, r, NULL, 0);
	json_object_put(r);
	for (int i = 0; i < 16 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) > 0; i++)
		;
	close(fd);
}

/* Accepts control connections; each is answered on a thread of its own (at most 32 at once). */
static void *control_main(void *arg)
{
	struct cfs_daemon *d = arg;
	unsigned long busy = 0; /* accepts refused in a row for want of fds */

	for (;;) {
		pthread_attr_t a;
		pthread_t th;
		struct client *c;
		int fd = accept4(d->lsock, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/*
				 * Out of fds or memory for now (a container can pin
				 * fds: files it holds open after unlinking them): the
				 * connection waits in the backlog, and giving up here
				 * would leave every mount without its control socket
				 * (no stats, no live switch) for good.
				 */
				if (!busy++)
					cfs_daemon_log(d, LOG_WARNING, "cannot accept a control connection: %s "
						       "(trying again)", strerror(errno));
				nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
				continue;
			}
			break; /* shut down: the daemon is exiting */
		}
		busy = 0;
		if (!peer_allowed(d, fd)) {
			refuse(fd, "permission denied: only root and the store's owner may talk "
				   "to its daemon");
			continue;
		}
		pthread_mutex_lock(&d->mounts_lock);
		if (d->nclients >= 32) {
			pthread_mutex_unlock(&d->mounts_lock);
			refuse(fd, "the daemon is busy: try again");
			continue;
		}
		d->nclients++;
		pthread_mutex_unlock(&d->mounts_lock);
		c = malloc(sizeof(*c));
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&a, 256 * 1024);
		if (!c || pthread_create(&th, &a, client_main, c ? (c->d = d, c->sock = fd, c) : NULL)) {
			free(c);
			close(fd);
			pthread_mutex_lock(&d->mounts_lock);
			d->nclients--;
			pthread_cond_broadcast(&d->mounts_cond);
			pthread_mutex_unlock(&d->mounts_lock);
		}
		pthread_attr_destroy(&a);
	}
	return NULL;
}

/* --- start and end --------------------------------------------------------- */

/*
 * A writable mount holds an O_PATH fd per inode with an upper object: as
 * many as the kernel keeps inodes. Root may raise its limit to the
 * system's.
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

static void signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
}

int cfs_daemon_new(const struct cfs_daemon_options *o, struct cfs_daemon **out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct cfs_daemon *d;
	struct stat st;
	sigset_t set;
	int ret;

	*out = NULL;
	if (!o->foreground)
		openlog("cairn", LOG_PID, LOG_DAEMON);
	/*
	 * Chunk buffers are allocated by one thread and freed by another when
	 * evicted; glibc's per-thread arenas would each keep their own high-water
	 * mark (measured: twice the cache budget). One arena, chunk buffers from
	 * it rather than fresh mmaps (no page faults per decode), and the 1 MiB
	 * request buffers mapped on their own (only the pages a request touches
	 * count).
	 */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	/* the mode a caller asks for is the mode it gets: the kernel applied its umask */
	umask(0);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->lsock = d->lock_fd = d->epfd = d->wake_fd = d->trim_fd = -1;
	d->foreground = o->foreground;
	d->isolated = o->isolated;
	d->cache_bytes = o->cache_bytes ? o->cache_bytes : CFS_CACHE_DEFAULT;
	d->nworkers = o->threads ? o->threads : d->isolated ? 8 : CFS_THREADS_DEFAULT;
	/* isolated: the mount has them all; shared: a quarter each, so a hung upper holds a quarter */
	d->budget = d->isolated ? d->nworkers : (d->nworkers / 4 > 2 ? d->nworkers / 4 : 2);
	d->ns = cfs_ctl_mount_ns();
	pthread_mutex_init(&d->decoding_lock, NULL);
	pthread_cond_init(&d->decoded, NULL);
	pthread_mutex_init(&d->mounts_lock, NULL);
	pthread_cond_init(&d->mounts_cond, NULL);
	pthread_mutex_init(&d->switch_mutex, NULL);
	d->store_dir = strdup(o->store_dir);
	if (!d->store_dir) {
		ret = -ENOMEM;
		goto fail;
	}
	/* writable for one transaction per mount: its hold on what it serves (image.h) */
	ret = cairn_store_open(d->store_dir, 0, NULL, &d->store);
	if (ret) {
		ret = cairn_err(ret, "cannot open store '%s': %s", d->store_dir, cairn_errmsg());
		goto fail;
	}
	/* lazily pulled chunks: fetched on first read when the program can (cairn-remote) */
	if (o->sources) {
		ret = o->sources(d->store, daemon_background_log, d);
		if (ret) {
			ret = cairn_err(ret, "cannot read from remote stores: %s", cairn_errmsg());
			goto fail;
		}
	}
	d->owner = stat(d->store_dir, &st) == 0 ? st.st_uid : geteuid();
	ret = cfs_cache_new(d->cache_bytes, cache_shards(d->cache_bytes), &d->cache);
	if (ret)
		goto fail;
	if (pthread_key_create(&d->thread_key, cfs_thread_free)) {
		ret = -EAGAIN;
		goto fail;
	}
	d->zeros = calloc(1, CFS_MAX_READ);
	if (!d->zeros) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = d->isolated ? cfs_ctl_isolated_socket(d->store_dir, getpid(), d->sock_path,
						    sizeof(d->sock_path))
			  : cfs_ctl_daemon_socket(d->store_dir, d->sock_path, sizeof(d->sock_path));
	if (!ret && !o->takeover) {
		d->lsock = cfs_ctl_listen(d->sock_path);
		ret = d->lsock < 0 ? d->lsock : 0;
	}
	if (ret) {
		ret = cairn_err(ret, "cannot listen on '%s': %s", d->sock_path, strerror(-ret));
		goto fail;
	}
	if (!d->isolated) {
		d->lock_fd = cfs_ctl_lock_open(d->store_dir);
		if (d->lock_fd < 0) {
			ret = cairn_err(d->lock_fd, "cannot open the daemon's lock: %s",
					strerror(-d->lock_fd));
			goto fail;
		}
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->trim_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->wake_fd < 0 || d->trim_fd < 0 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_fd, &ev) < 0 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->trim_fd,
		      &(struct epoll_event){ .events = EPOLLIN | EPOLLONESHOT, .data.ptr = d }) < 0) {
		ret = -errno;
		goto fail;
	}
	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	if (!d->workers) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < d->nworkers; i++) {
		if (pthread_create(&d->workers[i], NULL, worker_main, d)) {
			d->nworkers = i;
			ret = -EAGAIN;
			goto fail;
		}
	}
	if (!o->takeover) {
		if (pthread_create(&d->control, NULL, control_main, d)) {
			ret = -EAGAIN;
			goto fail;
		}
		d->control_running = true;
	}
	*out = d;
	return 0;
fail:
	cfs_daemon_free(d);
	return ret;
}

int cfs_daemon_take_over(struct cfs_daemon *d, unsigned *mounts)
{
	int ret = cfs_handover_take(d, mounts);

	if (d->lsock >= 0 && !d->control_running) {
		if (pthread_create(&d->control, NULL, control_main, d) == 0)
			d->control_running = true;
		else
			cfs_daemon_log(d, LOG_ERR, "no control thread: the mounts are served, "
						   "nothing else is answered");
	}
	return ret;
}

/* Unmounts every mount (a signal came): lazily where we can see it, by aborting where not. */
static void stop_all(struct cfs_daemon *d)
{
	struct cfs **v;
	size_t n;

	pthread_mutex_lock(&d->mounts_lock);
	d->stopping = true;
	pthread_mutex_unlock(&d->mounts_lock);
	v = mounts_ref(d, NULL, NULL, &n);
	for (size_t i = 0; v && i < n; i++) {
		struct cfs *fs = v[i];
		char path[96];
		int fd;

		bool done = false;

		/* its binds first (read-only mounts sharing the session), then itself */
		pthread_mutex_lock(&d->mounts_lock);
		for (struct cfs_view *w = fs->views; w; w = w->next)
			if (w->ns == d->ns)
				umount2(w->mountpoint, MNT_DETACH);
		pthread_mutex_unlock(&d->mounts_lock);
		if (!fs->primary_gone && fs->o->ns == d->ns)
			done = umount2(fs->o->mountpoint, MNT_DETACH) == 0;
		if (done)
			continue;
		/* in another mount namespace: end the connection (ENOTCONN there) */
		snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", fs->o->conn);
		fd = fs->o->conn ? open(path, O_WRONLY | O_CLOEXEC) : -1;
		if (fd < 0 || write(fd, "1", 1) != 1)
			cfs_log(fs, LOG_WARNING, "cannot unmount or abort the connection: the "
						 "mount ends with the daemon");
		if (fd >= 0)
			close(fd);
	}
	mounts_unref(v, n);
}

/* The shared daemon may exit: idle, and no command holds the lock to talk to it. */
static bool may_exit(struct cfs_daemon *d)
{
	bool idle;

	pthread_mutex_lock(&d->mounts_lock);
	idle = d->nmounts == 0 && d->nclients == 0;
	if (d->handed_over && idle) {
		pthread_mutex_unlock(&d->mounts_lock);
		return true; /* the path, the lock and the records are the new daemon's */
	}
	pthread_mutex_unlock(&d->mounts_lock);
	if (!idle)
		return false;
	if (d->isolated)
		return true;
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return false; /* a command is starting a mount: look again later */
	pthread_mutex_lock(&d->mounts_lock);
	idle = d->nmounts == 0 && d->nclients == 0;
	if (idle)
		d->stopping = true; /* nothing more will be accepted */
	pthread_mutex_unlock(&d->mounts_lock);
	if (!idle) {
		flock(d->lock_fd, LOCK_UN);
		return false;
	}
	/* gone from the store's view before the lock is released */
	cfs_ctl_unlink(d->sock_path);
	d->sock_path[0] = '\0';
	shutdown(d->lsock, SHUT_RDWR);
	flock(d->lock_fd, LOCK_UN);
	return true;
}

int cfs_daemon_run(struct cfs_daemon *d, int ready_fd)
{
	int64_t stop_at = 0;
	sigset_t set;

	signals(&set);
	if (ready_fd >= 0) {
		if (write(ready_fd, "ok\n", 3) != 3)
			cfs_daemon_log(d, LOG_DEBUG, "the command that started the daemon went away");
		close(ready_fd);
	}
	cfs_daemon_log(d, LOG_INFO, "daemon for store %s: %u workers, %zu MiB cache", d->store_dir,
	     d->nworkers, d->cache_bytes >> 20);
	for (;;) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		int sig = sigtimedwait(&set, NULL, &ts);

		if (sig > 0) {
			cfs_daemon_log(d, LOG_INFO, "signal %d: unmounting every mount", sig);
			stop_all(d);
			if (!stop_at)
				stop_at = cairn_now_ns() + 3000000000ll;
		}
		if (may_exit(d))
			break;
		/* unmounted lazily but still busy: the connections end with the process */
		if (stop_at && cairn_now_ns() > stop_at)
			break;
	}
	cfs_daemon_log(d, LOG_INFO, "daemon for store %s exits", d->store_dir);
	return 0;
}

void cfs_daemon_free(struct cfs_daemon *d)
{
	if (!d)
		return;
	if (d->lsock >= 0)
		shutdown(d->lsock, SHUT_RDWR);
	if (d->control_running)
		pthread_join(d->control, NULL);
	/* answering clients end on their own: wait for them (they hold no mount for long) */
	pthread_mutex_lock(&d->mounts_lock);
	while (d->nclients > 0)
		pthread_cond_wait(&d->mounts_cond, &d->mounts_lock);
	pthread_mutex_unlock(&d->mounts_lock);
	if (d->wake_fd >= 0) {
		uint64_t one = 1;

		if (write(d->wake_fd, &one, sizeof(one)) != sizeof(one))
			cfs_daemon_log(d, LOG_ERR, "cannot wake the workers");
	}
	for (unsigned i = 0; d->workers && i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	/* mounts left (a signal, then a timeout): their connections end with their fds */
	while (d->mounts) {
		struct cfs *fs = d->mounts;

		d->mounts = fs->next;
		cfs_mount_unrecord(fs);
		cfs_mount_unref(fs);
	}
	/* the path is ours only if we listened on it (a takeover that failed never did) */
	if (d->lsock >= 0 && d->sock_path[0])
		cfs_ctl_unlink(d->sock_path);
	if (d->lsock >= 0)
		close(d->lsock);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	if (d->trim_fd >= 0)
		close(d->trim_fd);
	free(d->workers);
	if (d->cache) {
		cfs_thread_free(pthread_getspecific(d->thread_key));
		pthread_key_delete(d->thread_key);
		cfs_cache_free(d->cache);
	}
	free(d->zeros);
	cairn_store_close(d->store);
	pthread_mutex_destroy(&d->switch_mutex);
	pthread_cond_destroy(&d->mounts_cond);
	pthread_mutex_destroy(&d->mounts_lock);
	pthread_cond_destroy(&d->decoded);
	pthread_mutex_destroy(&d->decoding_lock);
	free(d->store_dir);
	free(d);
}
