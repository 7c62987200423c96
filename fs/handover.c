/* SPDX-License-Identifier: MIT */
/*
 * handover.c - 'cairn daemon restart': the running daemon hands every mount
 * to a new one, and nothing is unmounted.
 *
 * What the kernel relies on travels: the FUSE connection's fd, the inode
 * numbers it knows and their lookup counts, the handles of open
 * directories, and for a writable mount its upper (with the lock the old
 * daemon holds on it) and every upper fd its inodes hold; the image served,
 * the generation and the leases travel too. The old daemon first stops
 * taking requests (each mount's fd is taken out of the workers' epoll set)
 * and answers those it holds; what the kernel queues meanwhile waits in the
 * connection and is read by the new daemon.
 *
 * The kernel sends INIT once per connection, and a fresh libfuse session
 * refuses any other request before INIT. So the old daemon keeps a copy of
 * the INIT request each connection began with, and the new one gives it to
 * its session first (libfuse 3.14's fuse_session_custom_io(): the first
 * read returns the copy, and the reply to it is dropped): the session then
 * negotiates what it negotiated then, and reads the real connection from
 * there on.
 *
 * The exchange, on one connection to the old daemon's control socket:
 *   new -> old   {op: "handover"}
 *   old -> new   {part: "begin", mounts: K}
 *                per mount: {part: "mount", ...} + fds (connection, upper),
 *                {part: "inodes", list} + fds (at most 100 inodes a message),
 *                {part: "dirs", dir} (open directory handles), {part: "end"}
 *                then {part: "done"}
 *   new -> old   {ok} or {error}
 * On "ok" the old daemon lets go of everything without unmounting and
 * exits; on an error, or if the new daemon goes away, it takes the mounts
 * back and serves on.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "fs-internal.h"
#include "image.h"

#define INODES_PER_MESSAGE 100

static char *hex_of(const void *p, size_t len)
{
	char *h = malloc(2 * len + 1);

	for (size_t i = 0; h && i < len; i++)
		snprintf(h + 2 * i, 3, "%02x", ((const unsigned char *)p)[i]);
	if (h)
		h[2 * len] = '\0';
	return h;
}

static int unhex(const char *h, void *out, size_t cap, size_t *len)
{
	size_t n = strlen(h) / 2;

	if (n > cap)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		unsigned c;

		if (sscanf(h + 2 * i, "%2x", &c) != 1)
			return -EPROTO;
		((unsigned char *)out)[i] = (unsigned char)c;
	}
	*len = n;
	return 0;
}

static void add_id(json_object *o, const char *k, const struct cairn_id *id)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(id, hex);
	json_object_object_add(o, k, json_object_new_string(hex));
}

static int get_id(json_object *o, const char *k, struct cairn_id *id)
{
	return cairn_id_parse_prefix(cfs_ctl_str(o, k), id) == CAIRN_ID_HEX_LEN ? 0 : -EPROTO;
}

static json_object *part(const char *name)
{
	json_object *o = cfs_ctl_reply(NULL);

	if (o)
		json_object_object_add(o, "part", json_object_new_string(name));
	return o;
}

/* Sends o (put here) with fds; 0 or -errno. */
static int send_part(int sock, json_object *o, const int *fds, unsigned nfds)
{
	int ret = o ? cfs_ctl_send(sock, o, fds, nfds) : -ENOMEM;

	json_object_put(o);
	return ret;
}

/* --- the old daemon ---------------------------------------------------------- */

/* leased: the images the mount's inodes read (cfs_leases_get(), taken before mounts_lock) */
static json_object *mount_json(struct cfs *fs, const struct cairn_id *leased, size_t nleased,
			       int *fds, unsigned *nfds)
{
	const struct cfs_options *o = fs->o;
	json_object *m = part("mount"), *opts = json_object_new_object(),
		    *views = json_object_new_array(), *served = json_object_new_array();
	char *init = fs->init ? hex_of(fs->init, fs->init_len) : NULL;

	if (!m || !opts || !views || !served || (fs->init && !init)) {
		json_object_put(m);
		json_object_put(opts);
		json_object_put(views);
		json_object_put(served);
		free(init);
		return NULL;
	}
	json_object_object_add(opts, "source", json_object_new_string(o->source ? o->source : ""));
	if (o->platform)
		json_object_object_add(opts, "platform", json_object_new_string(o->platform));
	add_id(opts, "image", &o->image);
	json_object_object_add(opts, "mountpoint", json_object_new_string(o->mountpoint));
	if (o->fuse_opts)
		json_object_object_add(opts, "fuse_opts", json_object_new_string(o->fuse_opts));
	if (o->upper_dir)
		json_object_object_add(opts, "upper", json_object_new_string(o->upper_dir));
	json_object_object_add(opts, "dev", json_object_new_boolean(o->dev));
	json_object_object_add(opts, "nosuid", json_object_new_boolean(o->nosuid));
	json_object_object_add(opts, "ns", json_object_new_int64((int64_t)o->ns));
	json_object_object_add(opts, "conn", json_object_new_int64(o->conn));
	json_object_object_add(m, "options", opts);
	json_object_object_add(m, "id", json_object_new_string(fs->id));
	json_object_object_add(m, "started_ns", json_object_new_int64(fs->started_ns));
	json_object_object_add(m, "primary_gone", json_object_new_boolean(fs->primary_gone));
	for (struct cfs_view *v = fs->views; v; v = v->next) {
		json_object *w = json_object_new_object();

		json_object_object_add(w, "id", json_object_new_string(v->id));
		json_object_object_add(w, "mountpoint", json_object_new_string(v->mountpoint));
		json_object_object_add(w, "source", json_object_new_string(v->source ? v->source : ""));
		json_object_object_add(w, "ns", json_object_new_int64((int64_t)v->ns));
		json_object_array_add(views, w);
	}
	json_object_object_add(m, "views", views);
	add_id(m, "image", &fs->image);
	add_id(m, "root", &fs->root);
	json_object_object_add(m, "generation", json_object_new_int64((int64_t)fs->generation));
	json_object_object_add(m, "image_nodes", json_object_new_int64((int64_t)fs->image_nodes));
	json_object_object_add(m, "image_size", json_object_new_int64((int64_t)fs->image_size));
	for (size_t i = 0; i < nleased; i++) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(&leased[i], hex);
		json_object_array_add(served, json_object_new_string(hex));
	}
	json_object_object_add(m, "leases", served);
	json_object_object_add(m, "upper_gen", json_object_new_int64(fs->upper_gen));
	json_object_object_add(m, "reads", json_object_new_int64((int64_t)atomic_load(&fs->reads)));
	json_object_object_add(m, "init", json_object_new_string(init ? init : ""));
	free(init);
	json_object_object_add(m, "fd", json_object_new_int((int)*nfds));
	fds[(*nfds)++] = fs->fd;
	if (fs->upper) {
		json_object *u = cfs_upper_save(fs->upper, fds, nfds);

		if (!u) {
			json_object_put(m);
			return NULL;
		}
		json_object_object_add(m, "upper", u);
	}
	json_object_object_add(m, "ninodes", json_object_new_int64((int64_t)fs->ninodes));
	return m;
}

static json_object *inode_json(struct cfs_inode *in, int *fds, unsigned *nfds)
{
	json_object *o = json_object_new_object();
	char *name = in->name ? hex_of(in->name, strlen(in->name)) : NULL;

	if (!o || (in->name && !name)) {
		json_object_put(o);
		free(name);
		return NULL;
	}
	json_object_object_add(o, "i", json_object_new_int64((int64_t)in->ino));
	json_object_object_add(o, "n", json_object_new_int64((int64_t)in->nlookup));
	json_object_object_add(o, "p", json_object_new_int64((int64_t)in->parent));
	if (name)
		json_object_object_add(o, "nm", json_object_new_string(name));
	free(name);
	add_id(o, "nd", &in->node);
	if (in->lease)
		add_id(o, "l", &in->lease->image);
	json_object_object_add(o, "t", json_object_new_int(in->type));
	json_object_object_add(o, "dn", json_object_new_int64(in->dir_nlink));
	json_object_object_add(o, "b", json_object_new_int64((int64_t)in->blocks));
	if (in->rw) {
		json_object *rw = cfs_rw_inode_save(in, fds, nfds);

		if (!rw) {
			json_object_put(o);
			return NULL;
		}
		json_object_object_add(o, "rw", rw);
	}
	return o;
}

/* The inodes of fs, in messages of at most INODES_PER_MESSAGE (itable_lock held). */
static int send_inodes(int sock, struct cfs *fs)
{
	int fds[2 * INODES_PER_MESSAGE];
	unsigned nfds = 0, n = 0;
	json_object *msg = NULL, *list = NULL;
	int ret = 0;

	for (size_t b = 0; !ret && b < fs->nbuckets; b++) {
		for (struct cfs_inode *in = fs->buckets[b]; !ret && in; in = in->next) {
			json_object *o;

			if (!msg) {
				msg = part("inodes");
				list = json_object_new_array();
				if (!msg || !list) {
					json_object_put(list);
					ret = -ENOMEM;
					break;
				}
				json_object_object_add(msg, "list", list);
			}
			o = inode_json(in, fds, &nfds);
			if (!o) {
				ret = -ENOMEM;
				break;
			}
			json_object_array_add(list, o);
			if (++n == INODES_PER_MESSAGE) {
				ret = send_part(sock, msg, fds, nfds);
				msg = NULL;
				n = nfds = 0;
			}
		}
	}
	if (!ret && msg)
		return send_part(sock, msg, fds, nfds);
	json_object_put(msg);
	return ret;
}

static int send_mount(int sock, struct cfs *fs)
{
	int fds[8];
	unsigned nfds = 0;
	int ret;

	struct cairn_id *leased = NULL;
	size_t nleased;

	/* frozen: no request runs; the switch mutex keeps switches out */
	pthread_rwlock_rdlock(&fs->switch_lock);
	nleased = cfs_leases_get(fs, &leased);
	pthread_mutex_lock(&fs->d->mounts_lock);
	{
		/* fills fds: before send_part reads them */
		json_object *m = leased ? mount_json(fs, leased, nleased, fds, &nfds) : NULL;

		ret = send_part(sock, m, fds, nfds);
	}
	pthread_mutex_unlock(&fs->d->mounts_lock);
	free(leased);
	if (!ret) {
		pthread_mutex_lock(&fs->itable_lock);
		ret = send_inodes(sock, fs);
		pthread_mutex_unlock(&fs->itable_lock);
	}
	if (!ret && fs->dirs) {
		json_object *parts = cfs_rw_dirs_save(fs);

		for (size_t i = 0; !ret && parts && i < json_object_array_length(parts); i++) {
			json_object *p = part("dirs");

			if (p)
				json_object_object_add(p, "dir",
						       json_object_get(json_object_array_get_idx(parts, i)));
			ret = send_part(sock, p, NULL, 0);
		}
		if (!parts)
			ret = -ENOMEM;
		json_object_put(parts);
	}
	pthread_rwlock_unlock(&fs->switch_lock);
	return ret ? ret : send_part(sock, part("end"), NULL, 0);
}

/* Stops serving fs: its fd leaves the set; waits for what it holds to be answered. */
static void freeze(struct cfs *fs)
{
	struct epoll_event ev = { .events = EPOLLONESHOT, .data.ptr = fs };

	pthread_mutex_lock(&fs->loop_lock);
	fs->frozen = true;
	pthread_mutex_unlock(&fs->loop_lock);
	epoll_ctl(fs->d->epfd, EPOLL_CTL_MOD, fs->fd, &ev); /* armed for nothing */
}

static bool drained(struct cfs *fs)
{
	bool idle;

	pthread_mutex_lock(&fs->loop_lock);
	idle = !fs->reading && fs->inflight == 0;
	pthread_mutex_unlock(&fs->loop_lock);
	return idle;
}

static void thaw(struct cfs *fs)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = fs };

	pthread_mutex_lock(&fs->loop_lock);
	fs->frozen = false;
	fs->parked = false;
	if (!fs->gone)
		epoll_ctl(fs->d->epfd, EPOLL_CTL_MOD, fs->fd, &ev);
	pthread_mutex_unlock(&fs->loop_lock);
}

int cfs_handover_give(struct cfs_daemon *d, int sock, unsigned *given)
{
	struct cfs **v;
	size_t n;
	int64_t deadline = cairn_now_ns() + 20000000000ll;
	json_object *reply = NULL;
	int ret = 0;

	*given = 0;
	pthread_mutex_lock(&d->switch_mutex);
	pthread_mutex_lock(&d->mounts_lock);
	d->stopping = true; /* no mount, bind or share while the mounts change hands */
	pthread_mutex_unlock(&d->mounts_lock);
	v = cfs_mounts_ref(d, &n);
	for (size_t i = 0; v && i < n; i++)
		freeze(v[i]);
	for (size_t i = 0; v && i < n; i++) {
		while (!drained(v[i]) && cairn_now_ns() < deadline)
			usleep(1000);
		if (!drained(v[i])) {
			ret = cairn_err(-ETIMEDOUT, "mount %s has a request that does not finish "
						    "(a hung upper?): not restarting",
					v[i]->o->mountpoint);
			break;
		}
	}
	if (!v)
		ret = -ENOMEM;
	if (!ret) {
		json_object *b = part("begin");

		if (b)
			json_object_object_add(b, "mounts", json_object_new_int64((int64_t)n));
		ret = send_part(sock, b, NULL, 0);
	}
	for (size_t i = 0; !ret && i < n; i++)
		ret = send_mount(sock, v[i]);
	if (!ret)
		ret = send_part(sock, part("done"), NULL, 0);
	if (!ret) {
		/* the new daemon sets every mount up, then says so (a minute at most) */
		ret = cfs_ctl_recv(sock, 60000, &reply, NULL, NULL, 0);
		if (!ret && *cfs_ctl_str(reply, "error"))
			ret = cairn_err(-EPROTO, "the new daemon: %s", cfs_ctl_str(reply, "error"));
		json_object_put(reply);
	}
	if (ret) {
		/* take everything back */
		for (size_t i = 0; v && i < n; i++)
			thaw(v[i]);
		pthread_mutex_lock(&d->mounts_lock);
		d->stopping = false;
		pthread_mutex_unlock(&d->mounts_lock);
		pthread_mutex_unlock(&d->switch_mutex);
		cfs_mounts_unref(v, n);
		return ret;
	}
	/* the new daemon serves them: let go of each without a word to the kernel */
	pthread_mutex_lock(&d->mounts_lock);
	d->handed_over = true;
	d->sock_path[0] = '\0'; /* the path is the new daemon's now */
	pthread_mutex_unlock(&d->mounts_lock);
	for (size_t i = 0; i < n; i++)
		cfs_mount_let_go(v[i]);
	pthread_mutex_unlock(&d->switch_mutex);
	cfs_mounts_unref(v, n);
	*given = (unsigned)n;
	return 0;
}

/* --- the new daemon ------------------------------------------------------------ */

/*
 * The custom I/O of a handed-over session: its first read is the INIT the
 * connection began with, and the reply to it is dropped (the kernel had
 * one already); everything else is the connection's.
 */
static ssize_t replay_read(int fd, void *buf, size_t len, void *userdata)
{
	struct cfs *fs = userdata;

	if (fs->replay && !fs->replay->given) {
		size_t n = fs->replay->len < len ? fs->replay->len : len;

		memcpy(buf, fs->replay->init, n);
		fs->replay->given = true;
		return (ssize_t)n;
	}
	return read(fd, buf, len);
}

static ssize_t replay_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct cfs *fs = userdata;

	if (fs->replay && !fs->replay->dropped && count > 0 &&
	    iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header h;
		ssize_t total = 0;

		memcpy(&h, iov[0].iov_base, sizeof(h));
		if (h.unique == fs->replay->unique) {
			fs->replay->dropped = true;
			for (int i = 0; i < count; i++)
				total += (ssize_t)iov[i].iov_len;
			return total;
		}
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io replay_io = {
	.read = replay_read,
	.writev = replay_writev,
};

/* Gives the session its INIT again (before any worker sees the mount). */
static int replay_init(struct cfs *fs)
{
	struct fuse_buf buf = { .mem = malloc(CFS_REQ_BUF), .size = CFS_REQ_BUF };
	struct fuse_in_header h;
	int n;

	if (!buf.mem)
		return -ENOMEM;
	memcpy(&h, fs->replay->init, sizeof(h));
	fs->replay->unique = h.unique;
	n = fuse_session_receive_buf(fs->se, &buf);
	if (n > 0)
		fuse_session_process_buf(fs->se, &buf);
	free(buf.mem);
	if (n <= 0 || !fs->replay->dropped)
		return cairn_err(-EPROTO, "the handed-over INIT was not taken again");
	return 0;
}

static int take_inodes(struct cfs *fs, json_object *msg, int *fds, unsigned nfds)
{
	json_object *list;
	int ret = 0;

	if (!json_object_object_get_ex(msg, "list", &list))
		return cairn_err(-EPROTO, "a handover message without its inodes");
	pthread_mutex_lock(&fs->itable_lock);
	for (size_t i = 0; !ret && i < json_object_array_length(list); i++) {
		json_object *o = json_object_array_get_idx(list, i), *rw;
		struct cfs_inode *in = calloc(1, sizeof(*in));
		char name[CAIRN_NAME_MAX + 1];
		size_t len = 0;
		const char *nm = cfs_ctl_str(o, "nm");

		if (!in) {
			ret = -ENOMEM;
			break;
		}
		in->ino = (uint64_t)cfs_ctl_int(o, "i");
		in->nlookup = (uint64_t)cfs_ctl_int(o, "n");
		in->parent = (uint64_t)cfs_ctl_int(o, "p");
		in->type = (uint8_t)cfs_ctl_int(o, "t");
		in->dir_nlink = (uint32_t)cfs_ctl_int(o, "dn");
		in->blocks = (uint64_t)cfs_ctl_int(o, "b");
		ret = get_id(o, "nd", &in->node);
		if (!ret && *nm) {
			ret = unhex(nm, name, CAIRN_NAME_MAX, &len);
			if (!ret) {
				in->name = strndup(name, len);
				in->name_hash = cfs_name_hash(name, len);
				if (!in->name)
					ret = -ENOMEM;
			}
		}
		if (!ret && *cfs_ctl_str(o, "l")) {
			struct cairn_id img;
			struct cfs_lease *l = NULL;

			if (get_id(o, "l", &img) == 0)
				l = cfs_lease_get_locked(fs, &img);
			if (!l)
				ret = cairn_err(-EPROTO, "inode %llu: its lease is lost",
						(unsigned long long)in->ino);
			else
				cfs_lease_hold_locked(fs, in, l);
		}
		if (!ret && cfs_inode_adopt_locked(fs, in))
			ret = cairn_err(-EPROTO, "inode %llu handed over twice",
					(unsigned long long)in->ino);
		if (ret) {
			free(in->name);
			free(in);
			break;
		}
		if (json_object_object_get_ex(o, "rw", &rw))
			ret = fs->upper ? cfs_rw_inode_load(fs, in, rw, fds, nfds)
					: cairn_err(-EPROTO, "writable state on a read-only mount");
	}
	pthread_mutex_unlock(&fs->itable_lock);
	return ret;
}

/* Receives one mount, from its "mount" message (msg, fds) to its "end". */
static int take_mount(struct cfs_daemon *d, int sock, json_object *msg, int *fds, unsigned nfds,
		      struct cfs **out)
{
	struct cfs_options o;
	json_object *opts, *views, *served, *upper = NULL;
	const char *init = cfs_ctl_str(msg, "init");
	struct cfs *fs = NULL;
	int64_t at = cfs_ctl_int(msg, "fd");
	int ret;

	*out = NULL;
	if (!json_object_object_get_ex(msg, "options", &opts) || at < 0 || (uint64_t)at >= nfds)
		return cairn_err(-EPROTO, "a handed-over mount without its options or connection");
	if (!*init)
		return cairn_err(-EPROTO, "mount %s: its daemon kept no INIT (it cannot be handed over)",
				 cfs_ctl_str(msg, "id"));
	json_object_object_add(opts, "v", json_object_new_int(CFS_CTL_VERSION));
	ret = cfs_ctl_mount_options(opts, &o);
	if (ret)
		return ret;
	json_object_object_get_ex(msg, "upper", &upper);
	ret = cfs_mount_adopt(d, &o, cfs_ctl_str(msg, "id"), upper, fds, nfds, &fs);
	if (ret)
		return ret;
	fs->started_ns = cfs_ctl_int(msg, "started_ns");
	fs->primary_gone = cfs_ctl_bool(msg, "primary_gone");
	ret = get_id(msg, "image", &fs->image);
	if (!ret)
		ret = get_id(msg, "root", &fs->root);
	fs->generation = (uint64_t)cfs_ctl_int(msg, "generation");
	fs->image_nodes = (uint64_t)cfs_ctl_int(msg, "image_nodes");
	fs->image_size = (uint64_t)cfs_ctl_int(msg, "image_size");
	fs->upper_gen = (unsigned)cfs_ctl_int(msg, "upper_gen");
	atomic_store(&fs->reads, (uint64_t)cfs_ctl_int(msg, "reads"));
	/* the leases: the image served now first, then every one an inode reads */
	if (!ret)
		ret = cfs_leases_init(fs);
	if (!ret && json_object_object_get_ex(msg, "leases", &served)) {
		pthread_mutex_lock(&fs->itable_lock);
		for (size_t i = 0; !ret && i < json_object_array_length(served); i++) {
			struct cairn_id img;

			if (cairn_id_parse_prefix(json_object_get_string(
							  json_object_array_get_idx(served, i)),
						  &img) == CAIRN_ID_HEX_LEN &&
			    !cfs_lease_get_locked(fs, &img))
				ret = -ENOMEM;
		}
		pthread_mutex_unlock(&fs->itable_lock);
	}
	if (!ret && json_object_object_get_ex(msg, "views", &views)) {
		for (size_t i = 0; !ret && i < json_object_array_length(views); i++) {
			json_object *w = json_object_array_get_idx(views, i);
			struct cfs_view *v = calloc(1, sizeof(*v));

			if (!v || !(v->mountpoint = strdup(cfs_ctl_str(w, "mountpoint"))) ||
			    !(v->source = strdup(cfs_ctl_str(w, "source")))) {
				if (v)
					free(v->mountpoint);
				free(v);
				ret = -ENOMEM;
				break;
			}
			snprintf(v->id, sizeof(v->id), "%s", cfs_ctl_str(w, "id"));
			v->ns = (uint64_t)cfs_ctl_int(w, "ns");
			v->next = fs->views;
			fs->views = v;
		}
	}
	/* the INIT, kept for a restart after this one too */
	if (!ret) {
		fs->init_len = strlen(init) / 2;
		fs->init = malloc(fs->init_len);
		ret = fs->init ? unhex(init, fs->init, fs->init_len, &fs->init_len) : -ENOMEM;
		if (!ret && fs->init_len < sizeof(struct fuse_in_header))
			ret = cairn_err(-EPROTO, "a handed-over INIT is cut short");
	}
	/* the connection, read through the replay first */
	if (!ret) {
		fs->replay = calloc(1, sizeof(*fs->replay));
		if (!fs->replay)
			ret = -ENOMEM;
	}
	if (!ret) {
		fs->replay->init = fs->init;
		fs->replay->len = fs->init_len;
		ret = fuse_session_custom_io(fs->se, &replay_io, fds[at]);
		if (!ret) {
			fs->fd = fds[at];
			fds[at] = -1;
			ret = replay_init(fs);
		}
	}
	/* then its inodes and directory handles, up to its "end" */
	while (!ret) {
		int mfds[CFS_CTL_MAX_FDS];
		unsigned mn = 0;
		json_object *m = NULL;
		const char *p;
		bool end;

		ret = cfs_ctl_recv(sock, 60000, &m, mfds, &mn, CFS_CTL_MAX_FDS);
		p = cfs_ctl_str(m, "part");
		if (!ret && strcmp(p, "inodes") == 0) {
			ret = take_inodes(fs, m, mfds, mn);
		} else if (!ret && strcmp(p, "dirs") == 0) {
			json_object *dir;

			ret = fs->dirs && json_object_object_get_ex(m, "dir", &dir)
				      ? cfs_rw_dirs_load(fs, dir)
				      : cairn_err(-EPROTO, "directory handles on a read-only mount");
		} else if (!ret && strcmp(p, "end") != 0) {
			ret = cairn_err(-EPROTO, "a handover message out of place ('%s')", p);
		}
		end = strcmp(p, "end") == 0; /* p lives as long as m */
		for (unsigned i = 0; i < mn; i++)
			if (mfds[i] >= 0)
				close(mfds[i]);
		json_object_put(m);
		if (!ret && end)
			break;
	}
	if (!ret && !cfs_inode_find(fs, FUSE_ROOT_ID))
		ret = cairn_err(-EPROTO, "a handed-over mount without its root");
	/* from here on the connection itself */
	if (fs->replay) {
		free(fs->replay);
		fs->replay = NULL;
	}
	if (ret) {
		cfs_mount_free(fs);
		return ret;
	}
	*out = fs;
	return 0;
}

int cfs_handover_take(struct cfs_daemon *d, unsigned *taken)
{
	json_object *req = cfs_ctl_request("handover"), *msg = NULL;
	struct cfs **mounts = NULL;
	size_t n = 0, cap = 0;
	int sock, ret;

	*taken = 0;
	sock = cfs_ctl_connect(d->sock_path);
	if (sock < 0) {
		json_object_put(req);
		return cairn_err(sock, "no daemon to take over from at '%s'", d->sock_path);
	}
	ret = req ? cfs_ctl_send(sock, req, NULL, 0) : -ENOMEM;
	json_object_put(req);
	if (!ret)
		ret = cfs_ctl_recv(sock, 60000, &msg, NULL, NULL, 0);
	if (!ret && *cfs_ctl_str(msg, "error"))
		ret = cairn_err(-EPROTO, "%s", cfs_ctl_str(msg, "error"));
	else if (!ret && strcmp(cfs_ctl_str(msg, "part"), "begin") != 0)
		ret = cairn_err(-EPROTO, "the running daemon does not hand over");
	json_object_put(msg);
	while (!ret) {
		int fds[CFS_CTL_MAX_FDS];
		unsigned nfds = 0;
		const char *p;
		bool done;

		msg = NULL;
		ret = cfs_ctl_recv(sock, 60000, &msg, fds, &nfds, CFS_CTL_MAX_FDS);
		p = cfs_ctl_str(msg, "part");
		if (!ret && strcmp(p, "mount") == 0) {
			struct cfs *fs;

			if (n == cap) {
				struct cfs **m2 = realloc(mounts, (cap = cap ? 2 * cap : 16) * sizeof(*m2));

				if (!m2)
					ret = -ENOMEM;
				else
					mounts = m2;
			}
			if (!ret)
				ret = take_mount(d, sock, msg, fds, nfds, &fs);
			if (!ret)
				mounts[n++] = fs;
		} else if (!ret && strcmp(p, "done") != 0) {
			ret = cairn_err(-EPROTO, "a handover message out of place ('%s')", p);
		}
		done = strcmp(p, "done") == 0; /* p lives as long as msg */
		for (unsigned i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		json_object_put(msg);
		if (!ret && done)
			break;
	}
	/*
	 * Every mount is set up: from here on nothing may fail back to the old
	 * daemon (it would serve on with the path and records taken from it).
	 * Ours: the socket's path, the records, the workers; then the
	 * platforms are read again (a switch the old daemon turned away).
	 */
	if (!ret) {
		int l = cfs_ctl_listen(d->sock_path);

		if (l < 0)
			cfs_daemon_log(d, LOG_ERR, "cannot listen on '%s': %s", d->sock_path,
				       strerror(-l));
		else
			d->lsock = l;
		for (size_t i = 0; i < n; i++) {
			if (cfs_mount_record(mounts[i]))
				cfs_daemon_log(d, LOG_ERR, "cannot write the record of mount %s",
					       mounts[i]->id);
			cfs_daemon_serve_mount(d, mounts[i]);
			mounts[i] = NULL;
		}
		cfs_daemon_follow_platforms(d);
	}
	{
		json_object *r = cfs_ctl_reply(ret ? cairn_errmsg() : NULL);

		if (r)
			cfs_ctl_send(sock, r, NULL, 0); /* gone by now is fine: the mounts are ours */
		json_object_put(r);
	}
	close(sock);
	for (size_t i = 0; i < n; i++)
		if (mounts[i])
			cfs_mount_free(mounts[i]); /* a failed takeover: the old daemon serves on */
	free(mounts);
	if (!ret)
		*taken = (unsigned)n;
	return ret;
}
