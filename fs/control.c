/* SPDX-License-Identifier: MIT */
/*
 * control.c - the control protocol and the mount records (control.h).
 *
 * Sockets are SOCK_SEQPACKET: one datagram is one message, so framing is
 * the kernel's, and descriptors travel beside the bytes they belong to.
 * Records are one small JSON file per mount, replaced by rename.
 */
#include "control.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

int cfs_run_dir(const char *store_dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/run", store_dir);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* A socket path under STORE/run, or an abstract name when it does not fit sun_path. */
static int socket_path(const char *store_dir, const char *name, char *buf, size_t len)
{
	char run[4096];
	int ret = cfs_run_dir(store_dir, run, sizeof(run));

	if (ret)
		return ret;
	if (snprintf(buf, len, "%s/%s", run, name) >= (int)sizeof(((struct sockaddr_un *)0)->sun_path)) {
		char key[4200];
		int n = snprintf(key, sizeof(key), "%s/%s", run, name);

		snprintf(buf, len, "@cairn-%016llx",
			 (unsigned long long)XXH3_64bits(key, n > 0 ? (size_t)n : 0));
	}
	return 0;
}

int cfs_ctl_daemon_socket(const char *store_dir, char *buf, size_t len)
{
	return socket_path(store_dir, "daemon.sock", buf, len);
}

int cfs_ctl_isolated_socket(const char *store_dir, int pid, char *buf, size_t len)
{
	char name[32];

	snprintf(name, sizeof(name), "%d.sock", pid);
	return socket_path(store_dir, name, buf, len);
}

int cfs_ctl_lock_open(const char *store_dir)
{
	char run[4096], path[4200];
	int ret = cfs_run_dir(store_dir, run, sizeof(run)), fd;

	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/daemon.lock", run);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

static int fill_addr(const char *path, struct sockaddr_un *addr, socklen_t *alen)
{
	size_t plen = strlen(path);

	if (plen >= sizeof(addr->sun_path) || plen == 0)
		return -ENAMETOOLONG;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, plen);
	if (path[0] == '@')
		addr->sun_path[0] = '\0';
	*alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	return 0;
}

/*
 * A control socket at path, bound and listening (listen) or connected:
 * the fd or -errno.
 */
static int ctl_socket(const char *path, bool listen_)
{
	struct sockaddr_un addr;
	socklen_t alen;
	int fd, ret = fill_addr(path, &addr, &alen);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (listen_ && path[0] != '@')
		unlink(path);
	if (listen_ ? bind(fd, (struct sockaddr *)&addr, alen) < 0 ||
			      (path[0] != '@' && chmod(path, 0600) < 0) || listen(fd, 64) < 0
		    : connect(fd, (struct sockaddr *)&addr, alen) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int cfs_ctl_listen(const char *path)
{
	return ctl_socket(path, true);
}

int cfs_ctl_connect(const char *path)
{
	int fd = ctl_socket(path, false), ret;

	if (fd < 0)
		return fd;
	/*
	 * An abstract name has no permissions: anyone may have bound it first
	 * and would be handed a /dev/fuse fd. Only root or this user's daemon is
	 * talked to. (A path under STORE/run is the owner's alone.)
	 */
	if (path[0] == '@') {
		struct ucred cr;

		ret = cfs_ctl_peer(fd, &cr);
		if (!ret && cr.uid != 0 && cr.uid != geteuid())
			ret = cairn_err(-EACCES, "the control socket '%s' belongs to uid %u "
					"(pid %d), neither root nor you: not talking to it",
					path, (unsigned)cr.uid, (int)cr.pid);
		if (ret) {
			close(fd);
			return ret;
		}
	}
	return fd;
}

int cfs_ctl_peer(int sock, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return -errno;
	return len == sizeof(*cred) ? 0 : -EPROTO;
}

void cfs_ctl_unlink(const char *path)
{
	if (path[0] && path[0] != '@')
		unlink(path);
}

json_object *cfs_ctl_request(const char *op)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "v", json_object_new_int(CFS_CTL_VERSION));
	json_object_object_add(o, "op", json_object_new_string(op));
	return o;
}

json_object *cfs_ctl_reply(const char *err)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "v", json_object_new_int(CFS_CTL_VERSION));
	if (err)
		json_object_object_add(o, "error", json_object_new_string(err));
	return o;
}

int cfs_ctl_send(int sock, json_object *msg, const int *fds, unsigned nfds)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	union {
		char buf[CMSG_SPACE(sizeof(int) * CFS_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)s, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (len > CFS_CTL_MAX_MSG || nfds > CFS_CTL_MAX_FDS)
		return -EMSGSIZE;
	if (nfds) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE ? -ECONNRESET : -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int cfs_ctl_recv(int sock, int timeout_ms, json_object **msg, int *fds, unsigned *nfds,
		 unsigned maxfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CFS_CTL_MAX_FDS)];
		struct cmsghdr align;
	} u;
	cleanup_free char *data = malloc(CFS_CTL_MAX_MSG + 1);
	struct iovec iov = { .iov_base = data, .iov_len = CFS_CTL_MAX_MSG };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	int64_t deadline = cairn_now_ns() + (int64_t)timeout_ms * 1000000;
	json_tokener *tok;
	json_object *o;
	ssize_t n;
	int64_t v;

	*msg = NULL;
	if (nfds)
		*nfds = 0;
	if (!data)
		return -ENOMEM;
	for (;;) {
		int left = timeout_ms < 0 ? -1 : (int)((deadline - cairn_now_ns()) / 1000000);
		int k;

		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		k = poll(&p, 1, left);
		if (k > 0)
			break;
		if (k < 0 && errno != EINTR)
			return -errno;
	}
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* keep the descriptors that came (the caller's from now on), close any extra */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fds && nfds && *nfds < maxfds)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		return -ECONNRESET;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		return cairn_err(-EPROTO, "a control message was cut short");
	data[n] = '\0';
	tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, data, (int)n);
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return cairn_err(-EPROTO, "a control message is not a JSON object");
	}
	v = cfs_ctl_int(o, "v");
	if (v != CFS_CTL_VERSION) {
		json_object_put(o);
		return cairn_err(-EPROTO,
				 "control protocol version %lld on the other side, %d on this one "
				 "(a daemon and a cairn of different versions)",
				 (long long)v, CFS_CTL_VERSION);
	}
	*msg = o;
	return 0;
}

int cfs_ctl_call(const char *path, json_object *req, const int *fds, unsigned nfds,
		 int timeout_ms, json_object **reply)
{
	cleanup_fd int sock = cfs_ctl_connect(path);
	const char *err;
	int ret;

	*reply = NULL;
	if (sock < 0)
		return sock;
	ret = cfs_ctl_send(sock, req, fds, nfds);
	if (!ret)
		ret = cfs_ctl_recv(sock, timeout_ms, reply, NULL, NULL, 0);
	else if (ret == -ECONNRESET && cfs_ctl_recv(sock, 100, reply, NULL, NULL, 0) == 0)
		ret = 0; /* refused before we spoke: its one answer says why */
	if (ret == -ETIMEDOUT)
		return cairn_err(ret, "no answer in %d ms", timeout_ms);
	if (ret == -ECONNRESET)
		return cairn_err(ret, "the daemon closed the connection without an answer");
	if (ret)
		return ret;
	err = cfs_ctl_str(*reply, "error");
	if (*err)
		return cairn_err(-EPROTO, "%s", err);
	return 0;
}

static void add_str(json_object *o, const char *key, const char *v)
{
	if (v)
		json_object_object_add(o, key, json_object_new_string(v));
}

json_object *cfs_ctl_mount_request(const struct cfs_options *o)
{
	json_object *r = cfs_ctl_request("mount");
	char hex[CAIRN_ID_HEX_LEN + 1];

	if (!r)
		return NULL;
	cairn_id_hex(&o->image, hex);
	add_str(r, "source", o->source);
	add_str(r, "platform", o->platform);
	add_str(r, "image", hex);
	add_str(r, "mountpoint", o->mountpoint);
	add_str(r, "fuse_opts", o->fuse_opts);
	add_str(r, "upper", o->upper_dir);
	json_object_object_add(r, "dev", json_object_new_boolean(o->dev));
	json_object_object_add(r, "nosuid", json_object_new_boolean(o->nosuid));
	json_object_object_add(r, "ns", json_object_new_int64((int64_t)o->ns));
	json_object_object_add(r, "conn", json_object_new_int64(o->conn));
	return r;
}

static const char *str_or_null(json_object *o, const char *key)
{
	const char *s = cfs_ctl_str(o, key);

	return *s ? s : NULL;
}

int cfs_ctl_mount_options(json_object *req, struct cfs_options *o)
{
	memset(o, 0, sizeof(*o));
	o->source = cfs_ctl_str(req, "source");
	o->platform = str_or_null(req, "platform");
	o->mountpoint = cfs_ctl_str(req, "mountpoint");
	o->fuse_opts = str_or_null(req, "fuse_opts");
	o->upper_dir = str_or_null(req, "upper");
	o->dev = cfs_ctl_bool(req, "dev");
	o->nosuid = cfs_ctl_bool(req, "nosuid");
	o->ns = (uint64_t)cfs_ctl_int(req, "ns");
	o->conn = (unsigned)cfs_ctl_int(req, "conn");
	if (cairn_id_parse_prefix(cfs_ctl_str(req, "image"), &o->image) != CAIRN_ID_HEX_LEN)
		return cairn_err(-EPROTO, "a mount request without an image id");
	if (o->mountpoint[0] != '/')
		return cairn_err(-EPROTO, "a mount request without an absolute mountpoint");
	if (o->upper_dir && o->upper_dir[0] != '/')
		return cairn_err(-EPROTO, "a mount request with a relative upper directory");
	return 0;
}

const char *cfs_ctl_str(json_object *o, const char *key)
{
	json_object *v;
	const char *s;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	s = json_object_get_string(v);
	return s ? s : "";
}

int64_t cfs_ctl_int(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

bool cfs_ctl_bool(json_object *o, const char *key)
{
	json_object *v;

	return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* --- records --------------------------------------------------------------- */

static int record_path(const char *store_dir, const char *id, char *buf, size_t len)
{
	char run[4096];
	int ret = cfs_run_dir(store_dir, run, sizeof(run));

	if (ret)
		return ret;
	if (snprintf(buf, len, "%s/mount-%s.json", run, id) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int cfs_record_write(const char *store_dir, const struct cfs_record *r)
{
	json_object *o = json_object_new_object(), *leases = json_object_new_array();
	char path[4300], tmp[4400], hex[CAIRN_ID_HEX_LEN + 1];
	const char *s;
	int ret, fd;
	size_t len;

	if (!o || !leases) {
		json_object_put(o);
		json_object_put(leases);
		return -ENOMEM;
	}
	cairn_id_hex(&r->image, hex);
	json_object_object_add(o, "v", json_object_new_int(CFS_CTL_VERSION));
	json_object_object_add(o, "id", json_object_new_string(r->id));
	json_object_object_add(o, "pid", json_object_new_int(r->pid));
	json_object_object_add(o, "isolated", json_object_new_boolean(r->isolated));
	json_object_object_add(o, "ro", json_object_new_boolean(r->ro));
	json_object_object_add(o, "socket", json_object_new_string(r->socket ? r->socket : ""));
	json_object_object_add(o, "mountpoint", json_object_new_string(r->mountpoint));
	json_object_object_add(o, "ns", json_object_new_int64((int64_t)r->ns));
	json_object_object_add(o, "source", json_object_new_string(r->source ? r->source : ""));
	json_object_object_add(o, "platform", json_object_new_string(r->platform ? r->platform : ""));
	json_object_object_add(o, "upper", json_object_new_string(r->upper ? r->upper : ""));
	json_object_object_add(o, "shares", json_object_new_string(r->shares ? r->shares : ""));
	json_object_object_add(o, "image", json_object_new_string(hex));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)r->generation));
	for (size_t i = 0; i < r->nleases; i++) {
		cairn_id_hex(&r->leases[i], hex);
		json_object_array_add(leases, json_object_new_string(hex));
	}
	json_object_object_add(o, "leases", leases);
	json_object_object_add(o, "started_ns", json_object_new_int64(r->started_ns));
	ret = record_path(store_dir, r->id, path, sizeof(path));
	if (ret) {
		json_object_put(o);
		return ret;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	len = strlen(s);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = write(fd, s, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? 0 : -EIO;
		if (close(fd) < 0 && !ret)
			ret = -errno;
		if (!ret && rename(tmp, path) < 0)
			ret = -errno;
		if (ret)
			unlink(tmp);
	}
	json_object_put(o);
	return ret;
}

void cfs_record_remove(const char *store_dir, const char *id)
{
	char path[4300];

	if (record_path(store_dir, id, path, sizeof(path)) == 0)
		unlink(path);
}

bool cfs_pid_alive(int pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
	return !p || (p[1] == ' ' && p[2] != 'Z' && p[2] != 'X');
}

void cfs_record_release(struct cfs_record *r)
{
	free(r->socket);
	free(r->mountpoint);
	free(r->source);
	free(r->platform);
	free(r->upper);
	free(r->shares);
	free(r->leases);
	memset(r, 0, sizeof(*r));
}

void cfs_records_free(struct cfs_record *rs, int n)
{
	for (int i = 0; i < n; i++)
		cfs_record_release(&rs[i]);
	free(rs);
}

static int record_parse(json_object *o, struct cfs_record *r)
{
	json_object *l;

	memset(r, 0, sizeof(*r));
	if (cfs_ctl_int(o, "v") != CFS_CTL_VERSION || !*cfs_ctl_str(o, "id") ||
	    strlen(cfs_ctl_str(o, "id")) >= sizeof(r->id))
		return -EPROTO;
	strcpy(r->id, cfs_ctl_str(o, "id"));
	r->pid = (int)cfs_ctl_int(o, "pid");
	r->isolated = cfs_ctl_bool(o, "isolated");
	r->ro = cfs_ctl_bool(o, "ro");
	r->ns = (uint64_t)cfs_ctl_int(o, "ns");
	r->generation = (uint64_t)cfs_ctl_int(o, "generation");
	r->started_ns = cfs_ctl_int(o, "started_ns");
	r->socket = strdup(cfs_ctl_str(o, "socket"));
	r->mountpoint = strdup(cfs_ctl_str(o, "mountpoint"));
	r->source = strdup(cfs_ctl_str(o, "source"));
	r->platform = strdup(cfs_ctl_str(o, "platform"));
	r->upper = strdup(cfs_ctl_str(o, "upper"));
	r->shares = strdup(cfs_ctl_str(o, "shares"));
	if (cairn_id_parse_prefix(cfs_ctl_str(o, "image"), &r->image) != CAIRN_ID_HEX_LEN)
		memset(&r->image, 0, sizeof(r->image));
	if (json_object_object_get_ex(o, "leases", &l) && json_object_is_type(l, json_type_array)) {
		size_t nl = json_object_array_length(l);

		r->leases = calloc(nl ? nl : 1, sizeof(*r->leases));
		for (size_t j = 0; r->leases && j < nl; j++) {
			const char *h = json_object_get_string(json_object_array_get_idx(l, j));

			if (h && cairn_id_parse_prefix(h, &r->leases[r->nleases]) == CAIRN_ID_HEX_LEN)
				r->nleases++;
		}
	}
	if (!r->socket || !r->mountpoint || !r->source || !r->platform || !r->upper ||
	    !r->shares || !r->leases) {
		cfs_record_release(r);
		return -ENOMEM;
	}
	r->alive = cfs_pid_alive(r->pid);
	return 0;
}

int cfs_records_load(const char *store_dir, struct cfs_record **out)
{
	char run[4096], path[8192];
	struct cfs_record *rs = NULL;
	struct dirent *de;
	int n = 0, ret;
	DIR *d;

	*out = NULL;
	ret = cfs_run_dir(store_dir, run, sizeof(run));
	if (ret)
		return ret == -ENOENT || ret == -EACCES ? 0 : ret;
	d = opendir(run);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t nl = strlen(de->d_name);
		struct cfs_record r, *p;
		json_object *o;

		/* exactly mount-ID.json: not a .tmp being written */
		if (nl < 11 || strncmp(de->d_name, "mount-", 6) != 0 ||
		    strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", run, de->d_name);
		o = json_object_from_file(path);
		if (!o)
			continue;
		ret = record_parse(o, &r);
		json_object_put(o);
		if (ret == -ENOMEM)
			break;
		if (ret)
			continue;
		p = realloc(rs, (size_t)(n + 1) * sizeof(*p));
		if (!p) {
			cfs_record_release(&r);
			break;
		}
		rs = p;
		rs[n++] = r;
	}
	closedir(d);
	*out = rs;
	return n;
}

uint64_t cfs_ctl_mount_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/mnt", &st) == 0 ? (uint64_t)st.st_ino : 0;
}
