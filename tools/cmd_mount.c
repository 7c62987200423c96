/* SPDX-License-Identifier: MIT */
/*
 * cmd_mount.c - cairn mount, umount, mounts, stats, daemon.
 *
 * mount checks what it can, then mounts the FUSE filesystem itself, in the
 * caller's mount namespace (so a mount made inside 'unshare -m' or a
 * container's namespace lands there), and hands the connection's fd to a
 * daemon: the store's shared daemon (started when none runs), or with
 * --isolated a daemon of its own, or with -f this very process. The
 * command returns once the daemon serves the mount, or prints its one
 * error line and unmounts.
 *
 * Everything said to a daemon and read from STORE/run goes through
 * fs/control.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli.h"
#include "control.h"
#include "fs.h"
#include "platform.h"

/* Is path (canonical) a mount point right now, in this mount namespace? */
static bool is_mountpoint(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];

		/* id parent major:minor root mountpoint ... ; octal escapes in paths */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		{
			char un[PATH_MAX];
			size_t j = 0;

			for (size_t i = 0; mp[i] && j + 1 < sizeof(un); i++) {
				if (mp[i] == '\\' && mp[i + 1] && mp[i + 2] && mp[i + 3]) {
					un[j++] = (char)strtol((char[]){ mp[i + 1], mp[i + 2],
									 mp[i + 3], 0 },
							       NULL, 8);
					i += 3;
				} else {
					un[j++] = mp[i];
				}
			}
			un[j] = '\0';
			found = strcmp(un, path) == 0;
		}
	}
	fclose(f);
	return found;
}

/*
 * mkdir -p for an upper directory: missing parents and the directory
 * itself 0700, whatever the umask (it holds a container's files: setuid
 * binaries and devices the container's root made).
 */
static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0)
		return errno == EEXIST ? 0 : -1;
	return chmod(buf, 0700);
}

/*
 * An upper directory other users can reach (it and every directory above
 * it searchable by them) lets them run the setuid binaries and open the
 * devices a container made there; a directory above it that they can
 * write lets them move it away and put their own in its place. Warns,
 * once per finding: the mount goes on (the caller may mean it).
 */
static void upper_warn(const char *upper)
{
	char buf[PATH_MAX];
	struct stat st;
	bool reachable;
	size_t n = strlen(upper);

	if (n >= sizeof(buf) || stat(upper, &st) < 0)
		return;
	reachable = st.st_mode & 0011;
	memcpy(buf, upper, n + 1);
	for (char *slash; (slash = strrchr(buf, '/'));) {
		*(slash == buf ? slash + 1 : slash) = '\0';
		if (stat(buf, &st) < 0)
			return;
		if ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))
			fprintf(stderr, "cairn: warning: '%s' (above upper directory '%s') is "
					"writable by other users: they can replace the upper "
					"directory\n", buf, upper);
		reachable = reachable && (st.st_mode & 0011);
		if (slash == buf)
			break;
	}
	if (reachable)
		fprintf(stderr, "cairn: warning: upper directory '%s' is reachable by other users: "
				"they can run the setuid files and open the devices a container makes "
				"there (chmod 700 it)\n", upper);
}

/* Reads the one line a starting daemon writes on ready_fd ("ok", or its error). */
static void read_line(int fd, char *line, size_t len)
{
	size_t got = 0;

	while (got + 1 < len) {
		ssize_t n = read(fd, line + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got))
			break;
	}
	line[got] = '\0';
	line[strcspn(line, "\n")] = '\0';
}

/* A daemon's process: its own session, in /, quiet on the terminal. */
static void detach(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	setsid();
	if (chdir("/") < 0)
		_exit(1);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
}

/*
 * The shared daemon outlives the mount that starts it, and a process pins
 * its mount namespace: started from a container's or an 'unshare -m'
 * namespace, it would keep that namespace, and every mount in it, alive
 * after its last process left. So it moves to the outermost mount
 * namespace among its ancestors' that it may enter and where the store is
 * the same directory (pid 1's, the host's, on a plain machine); failing
 * that it stays where it was started.
 */
static void host_namespace(const char *store)
{
	int chain[64], n = 0, self = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	struct stat here, mine, st;
	pid_t p = getpid();

	if (self < 0 || stat(store, &here) < 0 || fstat(self, &mine) < 0) {
		if (self >= 0)
			close(self);
		return;
	}
	/* the ancestors, innermost first */
	while (p > 1 && n < (int)ARRAY_SIZE(chain)) {
		char path[64], buf[512], *q;
		int fd;
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)p);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (len <= 0)
			break;
		buf[len] = '\0';
		q = strrchr(buf, ')');
		if (!q || sscanf(q + 2, "%*c %d", &p) != 1)
			break;
		chain[n++] = (int)p;
	}
	for (int i = n - 1; i >= 0; i--) {
		char path[64];
		int ns;

		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", chain[i]);
		ns = open(path, O_RDONLY | O_CLOEXEC);
		if (ns < 0)
			continue;
		if (fstat(ns, &st) == 0 && st.st_ino == mine.st_ino && st.st_dev == mine.st_dev) {
			close(ns);
			break; /* our own: nothing further out to go to */
		}
		if (setns(ns, CLONE_NEWNS) == 0) {
			if (chdir("/") == 0 && stat(store, &st) == 0 && st.st_dev == here.st_dev &&
			    st.st_ino == here.st_ino) {
				close(ns);
				break;
			}
			setns(self, CLONE_NEWNS); /* not the same store there */
		}
		close(ns);
	}
	close(self);
}

/*
 * Starts the store's shared daemon (daemon.lock held exclusively by the
 * caller, no daemon answering): this program again, as 'cairn daemon
 * serve', detached. Returns once it listens, or -errno with its error.
 */
static int start_daemon(const char *store, size_t cache_bytes, bool takeover, char *line,
			size_t len)
{
	char exe[PATH_MAX], fdarg[16], cache[32];
	int pfd[2];
	pid_t pid;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return cairn_err(-errno, "cannot find the cairn program to start the daemon");
	exe[n] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
	snprintf(cache, sizeof(cache), "%zu", cache_bytes);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		/* (here, while the ancestors are ours: the grandchild is soon pid 1's) */
		host_namespace(store);
		/* a grandchild, so the daemon is nobody's child to reap */
		if (fork() != 0)
			_exit(0);
		detach();
		fcntl(pfd[1], F_SETFD, 0); /* the ready pipe crosses exec */
		execl(exe, "cairn", "--store", store, "daemon", "serve", "--ready-fd", fdarg,
		      "--cache-size", cache, takeover ? "--takeover" : NULL, (char *)NULL);
		dprintf(pfd[1], "cannot run '%s': %s\n", exe, strerror(errno));
		_exit(1);
	}
	close(pfd[1]);
	waitpid(pid, NULL, 0);
	read_line(pfd[0], line, len);
	close(pfd[0]);
	if (strncmp(line, "ok", 2) == 0 && (!line[2] || line[2] == ' '))
		return 0;
	return cairn_err(-EIO, "the daemon did not start: %s", *line ? line : "it died");
}

/*
 * Hands fd to the store's shared daemon, starting it when none runs (two
 * first mounts at once start one: see control.h). *id gets the mount's id.
 */
static int mount_shared(const char *store, const struct cfs_options *o, int fd,
			size_t cache_bytes, bool cache_set, char *id, size_t idlen)
{
	char sock[128];
	json_object *req = cfs_ctl_mount_request(o), *reply = NULL;
	int lock, ret;

	if (!req)
		return -ENOMEM;
	ret = cfs_ctl_daemon_socket(store, sock, sizeof(sock));
	lock = ret ? ret : cfs_ctl_lock_open(store);
	if (lock < 0) {
		json_object_put(req);
		return cairn_err(lock, "cannot open the store's run directory: %s", strerror(-lock));
	}
	flock(lock, LOCK_SH);
	ret = cfs_ctl_call(sock, req, &fd, 1, 60000, &reply);
	if (ret == -ENOENT || ret == -ECONNREFUSED) {
		/* no daemon: look again holding the lock alone, then start one */
		flock(lock, LOCK_EX);
		cairn_err_clear();
		ret = cfs_ctl_call(sock, req, &fd, 1, 60000, &reply);
		if (ret == -ENOENT || ret == -ECONNREFUSED) {
			cairn_err_clear();
			char line[1200];

			ret = start_daemon(store, cache_bytes, false, line, sizeof(line));
			if (!ret)
				ret = cfs_ctl_call(sock, req, &fd, 1, 60000, &reply);
		}
	} else if (!ret && cache_set) {
		json_object *h = cfs_ctl_request("hello"), *hr = NULL;

		if (h && cfs_ctl_call(sock, h, NULL, 0, 5000, &hr) == 0 &&
		    (size_t)cfs_ctl_int(hr, "cache_bytes") != cache_bytes)
			fprintf(stderr, "cairn: note: the store's daemon runs with a %lld MiB cache "
					"(--cache-size applies to the daemon a mount starts)\n",
				(long long)(cfs_ctl_int(hr, "cache_bytes") >> 20));
		json_object_put(h);
		json_object_put(hr);
		cairn_err_clear();
	}
	close(lock);
	if (!ret)
		snprintf(id, idlen, "%s", cfs_ctl_str(reply, "id"));
	json_object_put(reply);
	json_object_put(req);
	return ret;
}

/*
 * A read-only mount of a source the shared daemon already serves read-only
 * with the same options, with a mountpoint in our mount namespace: a bind
 * of that mount, so both are one session and one page cache. Returns 0
 * when bound, 1 when there is nothing to share (mount normally), or
 * -errno.
 */
static int mount_share(const char *store, const struct cfs_options *o)
{
	json_object *req = cfs_ctl_mount_request(o), *reply = NULL;
	char sock[128], from[PATH_MAX] = "", id[32] = "";
	int lock, ret;

	if (!req)
		return -ENOMEM;
	ret = cfs_ctl_daemon_socket(store, sock, sizeof(sock));
	lock = ret ? ret : cfs_ctl_lock_open(store);
	if (lock < 0) {
		json_object_put(req);
		return 1; /* the normal mount says what is wrong */
	}
	flock(lock, LOCK_SH); /* the daemon stays while we bind */
	json_object_object_del(req, "op");
	json_object_object_add(req, "op", json_object_new_string("share"));
	ret = cfs_ctl_call(sock, req, NULL, 0, 10000, &reply);
	json_object_put(req);
	if (!ret) {
		snprintf(from, sizeof(from), "%s", cfs_ctl_str(reply, "mountpoint"));
		snprintf(id, sizeof(id), "%s", cfs_ctl_str(reply, "id"));
	}
	json_object_put(reply);
	cairn_err_clear();
	ret = 1;
	if (*from && *id && mount(from, o->mountpoint, NULL, MS_BIND, NULL) == 0) {
		req = cfs_ctl_request("bind");
		if (req) {
			json_object_object_add(req, "id", json_object_new_string(id));
			json_object_object_add(req, "mountpoint", json_object_new_string(o->mountpoint));
			json_object_object_add(req, "ns", json_object_new_int64((int64_t)o->ns));
			json_object_object_add(req, "source", json_object_new_string(o->source));
			ret = cfs_ctl_call(sock, req, NULL, 0, 10000, &reply);
			json_object_put(reply);
			json_object_put(req);
		} else {
			ret = -ENOMEM;
		}
		if (ret) {
			umount2(o->mountpoint, MNT_DETACH);
			cairn_err_clear();
			ret = 1; /* the daemon did not take the bind: a mount of our own then */
		}
	}
	close(lock);
	return ret;
}

/* A daemon of its own for this mount (--isolated): forked, reports on a pipe. */
static int mount_isolated(const char *store, const struct cfs_options *o, int fd,
			  size_t cache_bytes)
{
	char line[1200];
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	if (pid == 0) {
		struct cfs_daemon_options dopt = { .store_dir = store, .cache_bytes = cache_bytes,
						   .isolated = true };
		struct cfs_daemon *d;
		char id[32];

		close(pfd[0]);
		detach();
		/* the store is opened here, after the fork: LMDB environments must not cross one */
		if (cfs_daemon_new(&dopt, &d)) {
			dprintf(pfd[1], "%s\n", cairn_errmsg());
			_exit(1);
		}
		if (cfs_daemon_mount(d, o, fd, id, sizeof(id))) {
			dprintf(pfd[1], "%s\n", cairn_errmsg());
			cfs_daemon_free(d);
			_exit(1);
		}
		cfs_daemon_run(d, pfd[1]);
		cfs_daemon_free(d);
		_exit(0);
	}
	close(pfd[1]);
	read_line(pfd[0], line, sizeof(line));
	close(pfd[0]);
	if (strcmp(line, "ok") == 0)
		return 0;
	waitpid(pid, NULL, 0);
	return cairn_err(-EIO, "%s", *line ? line : "the daemon died");
}

/* This process serves the mount until it ends (-f). */
static int mount_foreground(const char *store, const struct cfs_options *o, int fd,
			    size_t cache_bytes)
{
	struct cfs_daemon_options dopt = { .store_dir = store, .cache_bytes = cache_bytes,
					   .isolated = true, .foreground = true };
	struct cfs_daemon *d;
	char id[32];
	int ret = cfs_daemon_new(&dopt, &d);

	if (ret) {
		close(fd);
		return ret;
	}
	ret = cfs_daemon_mount(d, o, fd, id, sizeof(id));
	if (!ret)
		ret = cfs_daemon_run(d, -1);
	cfs_daemon_free(d);
	return ret;
}

int cmd_mount(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ro", no_argument, NULL, 'r' },
		{ "upper", required_argument, NULL, 'u' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "options", required_argument, NULL, 'o' },
		{ "cache-size", required_argument, NULL, 'c' },
		{ "dev", no_argument, NULL, 'D' },
		{ "nosuid", no_argument, NULL, 'S' },
		{ "debug", no_argument, NULL, 'd' },
		{ "isolated", no_argument, NULL, 'i' },
		{ 0 },
	};
	struct cfs_options o = { 0 };
	char mp[PATH_MAX], store[PATH_MAX], upper[PATH_MAX], id[32] = "";
	size_t cache_bytes = CFS_CACHE_DEFAULT;
	bool ro = false, foreground = false, isolated = false, cache_set = false;
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_image img;
	struct stat st;
	int opt, ret, fd;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "rfo:", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			ro = true;
			break;
		case 'u':
			o.upper_dir = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'o':
			o.fuse_opts = optarg;
			break;
		case 'c':
		{
			uint64_t v;

			if (cli_parse_bytes(optarg, NULL, &v) || v < (1u << 20) || v > SIZE_MAX)
				return cli_usage("mount", "--cache-size must be at least 1M, not '%s'",
						 optarg);
			cache_bytes = (size_t)v;
			cache_set = true;
			break;
		}
		case 'D':
			o.dev = true;
			break;
		case 'S':
			o.nosuid = true;
			break;
		case 'd':
			o.debug = true;
			foreground = true;
			break;
		case 'i':
			isolated = true;
			break;
		default:
			return cli_usage("mount", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 2)
		return cli_usage("mount", "mount takes an image and a directory");
	o.source = argv[optind];
	if (!realpath(argv[optind + 1], mp) || stat(mp, &st) < 0)
		return cli_fail(-errno, "cannot mount on '%s'", argv[optind + 1]);
	if (!S_ISDIR(st.st_mode))
		return cli_fail(0, "cannot mount on '%s': not a directory", argv[optind + 1]);
	if (strpbrk(mp, " \t\n\\"))
		return cli_fail(0, "cannot mount on '%s': blanks or backslashes in the path",
				argv[optind + 1]);
	if (is_mountpoint(mp))
		return cli_fail(0, "cannot mount on '%s': it is a mount point already (busy)",
				argv[optind + 1]);
	o.mountpoint = mp;
	if (o.upper_dir) {
		size_t mlen = strlen(mp);

		if (ro)
			return cli_usage("mount", "--ro and --upper exclude each other");
		if (mkdir_parents(o.upper_dir) < 0)
			return cli_fail(-errno, "cannot create upper directory '%s'", o.upper_dir);
		if (!realpath(o.upper_dir, upper))
			return cli_fail(-errno, "cannot use upper directory '%s'", o.upper_dir);
		upper_warn(upper);
		if (strncmp(upper, mp, mlen) == 0 && (upper[mlen] == '/' || upper[mlen] == '\0'))
			return cli_fail(0, "the upper directory '%s' lies inside the mount point",
					o.upper_dir);
		o.upper_dir = upper;
	}

	if (cli_open(cli, false, &s))
		return 1;
	/* the daemon runs in / : it needs the store's absolute path */
	if (!realpath(cli->store_dir, store)) {
		cairn_store_close(s);
		return cli_fail(-errno, "cannot open store '%s'", cli->store_dir);
	}
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		struct cairn_name name;

		ret = cairn_name_resolve(t, o.source, &name);
		o.image = name.image;
		if (!ret)
			ret = cairn_image_get(t, &o.image, &img);
		/* a platform's name (not a tag, not NAME@GEN): the mount follows it */
		if (!ret && name.kind == CAIRN_NAME_PLATFORM)
			o.platform = o.source;
		cairn_txn_abort(t);
	}
	cairn_store_close(s); /* a daemon opens its own, after any fork */
	if (ret)
		return cli_fail(ret, "cannot mount '%s'", o.source);

	if (!o.upper_dir && !isolated && !foreground) {
		o.ns = cfs_ctl_mount_ns();
		ret = mount_share(store, &o);
		if (ret <= 0)
			return ret ? cli_fail(ret, "cannot mount '%s' on '%s'", o.source,
					      argv[optind + 1])
				   : 0;
	}
	ret = cfs_kernel_mount(&o, &fd);
	if (ret)
		return cli_fail(ret, "cannot mount '%s' on '%s'", o.source, argv[optind + 1]);
	if (foreground)
		ret = mount_foreground(store, &o, fd, cache_bytes);
	else if (isolated)
		ret = mount_isolated(store, &o, fd, cache_bytes);
	else
		ret = mount_shared(store, &o, fd, cache_bytes, cache_set, id, sizeof(id));
	if (!foreground)
		close(fd);
	if (ret) {
		/* nobody serves it: take it away again (lazily: nothing can be using it) */
		umount2(mp, MNT_DETACH);
		return cli_fail(ret, "cannot mount '%s' on '%s'", o.source, argv[optind + 1]);
	}
	return 0;
}

/* --- mounts, stats, umount ------------------------------------------------ */

/*
 * The records of the store, with dead ones cleaned up where we can tell
 * their mount is gone: a dead daemon's record whose mountpoint, in our own
 * mount namespace, is no longer mounted.
 */
static int load_records(const char *store, struct cfs_record **out)
{
	uint64_t ns = cfs_ctl_mount_ns();
	int n = cfs_records_load(store, out);

	for (int i = 0; i < n; i++) {
		struct cfs_record *r = &(*out)[i];

		if (!r->alive && r->ns == ns && !is_mountpoint(r->mountpoint)) {
			cfs_record_remove(store, r->id);
			cfs_record_release(r);
			(*out)[i--] = (*out)[--n];
		}
	}
	return n;
}

int cmd_mounts(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cfs_record *rs = NULL;
	bool json = false;
	int opt, n;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("mounts", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc)
		return cli_usage("mounts", "mounts takes no arguments");
	n = load_records(cli->store_dir, &rs);
	if (n < 0)
		return cli_fail(n, "cannot list the mounts of store '%s'", cli->store_dir);
	if (json) {
		json_object *arr = json_object_new_array();

		for (int i = 0; i < n; i++) {
			json_object *o = json_object_new_object();
			char hex[CAIRN_ID_HEX_LEN + 1];

			cairn_id_hex(&rs[i].image, hex);
			json_object_object_add(o, "id", json_object_new_string(rs[i].id));
			json_object_object_add(o, "pid", json_object_new_int(rs[i].pid));
			json_object_object_add(o, "state", json_object_new_string(rs[i].alive ? "serving"
										       : "dead"));
			json_object_object_add(o, "isolated", json_object_new_boolean(rs[i].isolated));
			cli_json_add_bytes(o, "mountpoint", rs[i].mountpoint,
					   strlen(rs[i].mountpoint));
			cli_json_add_bytes(o, "source", rs[i].source, strlen(rs[i].source));
			json_object_object_add(o, "image", json_object_new_string(hex));
			json_object_object_add(o, "platform", json_object_new_string(rs[i].platform));
			json_object_object_add(o, "generation",
					       json_object_new_int64((int64_t)rs[i].generation));
			if (*rs[i].upper)
				cli_json_add_bytes(o, "upper", rs[i].upper, strlen(rs[i].upper));
			else
				json_object_object_add(o, "upper", NULL);
			json_object_object_add(o, "shares", *rs[i].shares ?
					       json_object_new_string(rs[i].shares) : NULL);
			json_object_array_add(arr, o);
		}
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		printf("%-14s %-8s %-14s %-20s %5s  %s\n", "ID", "PID", "IMAGE", "SOURCE", "GEN",
		       "MOUNTPOINT");
		for (int i = 0; i < n; i++) {
			char gen[24] = "-", hex[CAIRN_ID_HEX_LEN + 1], pid[24];

			if (*rs[i].platform)
				snprintf(gen, sizeof(gen), "%llu", (unsigned long long)rs[i].generation);
			cairn_id_hex(&rs[i].image, hex);
			snprintf(pid, sizeof(pid), "%d%s", rs[i].pid, rs[i].isolated ? "i" : "");
			printf("%-14s %-8s %-14.12s %-20s %5s  %s%s%s%s\n", rs[i].id, pid, hex,
			       rs[i].source, gen, rs[i].mountpoint, *rs[i].upper ? "  upper=" : "",
			       rs[i].upper, rs[i].alive ? "" : "  (dead: its daemon is gone)");
		}
	}
	cfs_records_free(rs, n);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The record of the mount at dir (canonical): ours (this mount namespace) first; or -1. */
static int find_record(struct cfs_record *rs, int n, const char *dir)
{
	uint64_t ns = cfs_ctl_mount_ns();
	int any = -1;

	for (int i = 0; i < n; i++) {
		if (strcmp(rs[i].mountpoint, dir) != 0)
			continue;
		if (rs[i].ns == ns && (rs[i].alive || any < 0))
			any = i;
		else if (any < 0)
			any = i;
	}
	return any;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cfs_record *rs = NULL;
	json_object *req, *reply = NULL, *st;
	char dir[PATH_MAX];
	bool json = false;
	int opt, n, i, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("stats", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc - 1)
		return cli_usage("stats", "stats takes a mount directory");
	if (!realpath(argv[optind], dir))
		return cli_fail(-errno, "no stats for '%s'", argv[optind]);
	n = load_records(cli->store_dir, &rs);
	i = n > 0 ? find_record(rs, n, dir) : -1;
	if (i < 0) {
		cfs_records_free(rs, n);
		return cli_fail(0, "no stats for '%s': not a cairn mount of store '%s'",
				argv[optind], cli->store_dir);
	}
	req = cfs_ctl_request("stats");
	if (req)
		json_object_object_add(req, "id", json_object_new_string(rs[i].id));
	ret = req ? cfs_ctl_call(rs[i].socket, req, NULL, 0, 5000, &reply) : -ENOMEM;
	json_object_put(req);
	cfs_records_free(rs, n);
	if (ret) {
		json_object_put(reply);
		return cli_fail(ret, "no stats for '%s': its daemon does not answer", argv[optind]);
	}
	if (!json_object_object_get_ex(reply, "stats", &st)) {
		json_object_put(reply);
		return cli_fail(0, "no stats for '%s': a garbled answer", argv[optind]);
	}
	if (json) {
		puts(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
	} else {
		json_object_object_foreach(st, key, val)
			printf("%-12s %s\n", key, json_object_get_string(val));
	}
	json_object_put(reply);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Names the processes using anything under dir (cwd, root, open files, maps). */
static void holders(const char *dir, char *out, size_t len)
{
	size_t dl = strlen(dir), used = 0;
	struct dirent *de;
	DIR *proc = opendir("/proc");

	out[0] = '\0';
	if (!proc)
		return;
	while ((de = readdir(proc))) {
		char path[PATH_MAX], target[PATH_MAX], comm[64] = "?";
		const char *links[] = { "cwd", "root", "exe" };
		bool holds = false;
		int pid = atoi(de->d_name);
		struct dirent *fde;
		DIR *fds;
		FILE *f;

		if (pid <= 0 || pid == getpid())
			continue;
		for (size_t k = 0; k < ARRAY_SIZE(links) && !holds; k++) {
			ssize_t n;

			snprintf(path, sizeof(path), "/proc/%d/%s", pid, links[k]);
			n = readlink(path, target, sizeof(target) - 1);
			if (n > 0) {
				target[n] = '\0';
				holds = strncmp(target, dir, dl) == 0 &&
					(target[dl] == '/' || target[dl] == '\0');
			}
		}
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = holds ? NULL : opendir(path);
		while (fds && !holds && (fde = readdir(fds))) {
			char fdp[PATH_MAX + 300];
			ssize_t n;

			if (snprintf(fdp, sizeof(fdp), "%s/%s", path, fde->d_name) >= (int)sizeof(fdp))
				continue;
			n = readlink(fdp, target, sizeof(target) - 1);
			if (n > 0) {
				target[n] = '\0';
				holds = strncmp(target, dir, dl) == 0 &&
					(target[dl] == '/' || target[dl] == '\0');
			}
		}
		if (fds)
			closedir(fds);
		if (!holds)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		used += (size_t)snprintf(out + used, len > used ? len - used : 0, "%s%d (%s)",
					 used ? ", " : "", pid, comm);
		if (used >= len)
			break;
	}
	closedir(proc);
}

/* Does the record of mount id still exist? */
static bool record_exists(const char *store, const char *id, int pid, bool *daemon_has_more)
{
	struct cfs_record *rs = NULL;
	int n = cfs_records_load(store, &rs);
	bool found = false;

	*daemon_has_more = false;
	for (int i = 0; i < n; i++) {
		if (strcmp(rs[i].id, id) == 0)
			found = true;
		else if (rs[i].pid == pid && rs[i].alive)
			*daemon_has_more = true;
	}
	cfs_records_free(rs, n);
	return found;
}

#define UMOUNT_WAIT_MS 60000

/*
 * Waits until process pid has exited, at most timeout_ms; true when it has
 * (or is not there). A pidfd turns readable when the process exits, not
 * when its parent reaps it: kill(pid, 0) would go on succeeding on the
 * zombie for as long as a busy or slow init takes to reap it.
 */
static bool wait_exit(pid_t pid, int timeout_ms)
{
	cleanup_fd int fd = pidfd_open(pid, 0);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	if (fd < 0)
		return errno == ESRCH;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r != 0;
}

int cmd_umount(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "lazy", no_argument, NULL, 'l' }, { 0 } };
	struct cfs_record *rs = NULL;
	char dir[PATH_MAX], who[1024], id[32] = "";
	bool lazy = false, dead = false, more;
	int opt, n, i, pid = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "l", opts, NULL)) != -1) {
		if (opt != 'l')
			return cli_usage("umount", "unknown option '%s'", argv[optind - 1]);
		lazy = true;
	}
	if (optind != argc - 1)
		return cli_usage("umount", "umount takes a mount directory");
	/* a dead daemon's mount cannot be stat'ed: resolve its parent instead */
	if (!realpath(argv[optind], dir)) {
		cleanup_free char *copy = strdup(argv[optind]);
		char *slash = copy ? strrchr(copy, '/') : NULL;
		char parent[PATH_MAX];
		const char *base;

		if (errno != ENOTCONN || !copy)
			return cli_fail(-errno, "cannot unmount '%s'", argv[optind]);
		if (slash) {
			*slash = '\0';
			base = slash + 1;
		} else {
			base = copy;
		}
		if (!realpath(slash ? (*copy ? copy : "/") : ".", parent) ||
		    snprintf(dir, sizeof(dir), "%s/%s", strcmp(parent, "/") ? parent : "",
			     base) >= (int)sizeof(dir))
			return cli_fail(-ENOTCONN, "cannot unmount '%s'", argv[optind]);
	}
	n = cfs_records_load(cli->store_dir, &rs);
	i = n > 0 ? find_record(rs, n, dir) : -1;
	if (i >= 0) {
		pid = rs[i].pid;
		dead = !rs[i].alive;
		snprintf(id, sizeof(id), "%s", rs[i].id);
	}
	cfs_records_free(rs, n);
	if (!is_mountpoint(dir)) {
		if (*id && dead)
			cfs_record_remove(cli->store_dir, id); /* what a killed daemon left */
		return cli_fail(0, "cannot unmount '%s': not mounted", argv[optind]);
	}
	if (umount2(dir, lazy ? MNT_DETACH : 0) < 0) {
		int err = errno;

		if (err == EBUSY) {
			holders(dir, who, sizeof(who));
			return cli_fail(0, "cannot unmount '%s': busy%s%s (or use --lazy)", argv[optind],
					*who ? ", in use by " : "", who);
		}
		return cli_fail(-err, "cannot unmount '%s'", argv[optind]);
	}
	if (!*id)
		return 0;
	if (dead) {
		cfs_record_remove(cli->store_dir, id);
		return 0;
	}
	if (lazy)
		return 0; /* the connection ends when its last user leaves */
	{
		/* its daemon drops the record at once when the session has others (binds) */
		struct cfs_record *rs2 = NULL;
		int n2 = cfs_records_load(cli->store_dir, &rs2);

		for (int k = 0; k < n2; k++) {
			json_object *req, *reply = NULL;

			if (strcmp(rs2[k].id, id) != 0 || rs2[k].isolated)
				continue;
			req = cfs_ctl_request("forget");
			if (req) {
				json_object_object_add(req, "id", json_object_new_string(id));
				cfs_ctl_call(rs2[k].socket, req, NULL, 0, 5000, &reply);
				cairn_err_clear();
			}
			json_object_put(reply);
			json_object_put(req);
		}
		cfs_records_free(rs2, n2);
	}
	/*
	 * The daemon sees the connection end and removes the record (bounded:
	 * a copy of the mount in another namespace keeps the connection); when
	 * it was the daemon's last mount, the daemon exits: wait for that too.
	 */
	for (int k = 0; k < 100 && record_exists(cli->store_dir, id, pid, &more); k++)
		usleep(50000);
	if (!more && pid > 0 && !wait_exit(pid, UMOUNT_WAIT_MS))
		fprintf(stderr, "cairn: warning: the daemon of '%s' (pid %d) has not exited after %d s\n",
			argv[optind], pid, UMOUNT_WAIT_MS / 1000);
	return 0;
}

/* --- the daemon ------------------------------------------------------------ */

/* cairn daemon serve: the store's shared daemon (started by cairn mount). */
static int daemon_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "cache-size", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "takeover", no_argument, NULL, 't' },
		{ 0 },
	};
	struct cfs_daemon_options o = { .cache_bytes = CFS_CACHE_DEFAULT };
	struct cfs_daemon *d;
	char store[PATH_MAX];
	int opt, ready = -1, ret, lock;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			o.takeover = true;
			break;
		case 'r':
			ready = atoi(optarg);
			break;
		case 'c':
		{
			uint64_t v;

			if (cli_parse_bytes(optarg, NULL, &v) || v < (1u << 20) || v > SIZE_MAX)
				return cli_usage("daemon", "--cache-size must be at least 1M");
			o.cache_bytes = (size_t)v;
		}
			break;
		case 'f':
			o.foreground = true;
			break;
		default:
			return cli_usage("daemon", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (ready >= 0)
		fcntl(ready, F_SETFD, FD_CLOEXEC);
	if (!realpath(cli->store_dir, store)) {
		ret = -errno;
		if (ready >= 0)
			dprintf(ready, "cannot open store '%s': %s\n", cli->store_dir, strerror(-ret));
		return cli_fail(ret, "cannot open store '%s'", cli->store_dir);
	}
	o.store_dir = store;
	if (ready < 0) {
		/* by hand: the lock keeps a second daemon from starting beside us */
		char sock[128];

		lock = cfs_ctl_lock_open(store);
		if (lock < 0 || flock(lock, LOCK_EX) < 0)
			return cli_fail(lock < 0 ? lock : -errno, "cannot lock the store's daemon");
		if (cfs_ctl_daemon_socket(store, sock, sizeof(sock)) == 0) {
			int fd = cfs_ctl_connect(sock);

			if (fd >= 0) {
				close(fd);
				close(lock);
				return cli_fail(0, "a daemon already serves store '%s'", store);
			}
		}
		ret = cfs_daemon_new(&o, &d);
		close(lock);
	} else {
		ret = cfs_daemon_new(&o, &d);
	}
	if (ret) {
		if (ready >= 0)
			dprintf(ready, "%s\n", cairn_errmsg());
		return cli_fail(ret, "cannot start the daemon");
	}
	if (o.takeover) {
		int64_t t0 = cairn_now_ns();
		unsigned n = 0;

		ret = cfs_daemon_take_over(d, &n);
		if (ret) {
			if (ready >= 0)
				dprintf(ready, "%s\n", cairn_errmsg());
			cfs_daemon_free(d);
			return cli_fail(ret, "cannot take the mounts over");
		}
		if (ready >= 0) {
			dprintf(ready, "ok %u %.1f %d\n", n, (double)(cairn_now_ns() - t0) / 1e6,
				(int)getpid());
			close(ready);
			ready = -1;
		}
	}
	ret = cfs_daemon_run(d, ready);
	cfs_daemon_free(d);
	return ret ? 1 : 0;
}

/* cairn daemon status: what the store's shared daemon says of itself. */
static int daemon_status(struct cli *cli, bool json)
{
	char store[PATH_MAX], sock[128];
	json_object *req = cfs_ctl_request("hello"), *reply = NULL;
	int ret;

	if (!realpath(cli->store_dir, store))
		return cli_fail(-errno, "cannot open store '%s'", cli->store_dir);
	ret = cfs_ctl_daemon_socket(store, sock, sizeof(sock));
	if (!ret)
		ret = req ? cfs_ctl_call(sock, req, NULL, 0, 5000, &reply) : -ENOMEM;
	json_object_put(req);
	if (ret == -ENOENT || ret == -ECONNREFUSED) {
		cairn_err_clear();
		json_object_put(reply);
		if (json)
			puts("{\"running\":false}");
		else
			printf("no daemon serves store '%s'\n", store);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (ret) {
		json_object_put(reply);
		return cli_fail(ret, "the daemon of store '%s' does not answer", store);
	}
	if (json) {
		json_object_object_add(reply, "running", json_object_new_boolean(true));
		json_object_object_del(reply, "v");
		puts(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	} else {
		printf("daemon %lld (cairn %s): %lld mounts (%lld FUSE sessions), %lld worker "
		       "threads, %lld MiB cache\n",
		       (long long)cfs_ctl_int(reply, "pid"), cfs_ctl_str(reply, "version"),
		       (long long)cfs_ctl_int(reply, "mounts"), (long long)cfs_ctl_int(reply, "sessions"),
		       (long long)cfs_ctl_int(reply, "threads"),
		       (long long)(cfs_ctl_int(reply, "cache_bytes") >> 20));
	}
	json_object_put(reply);
	return fflush(stdout) == 0 ? 0 : 1;
}

/*
 * cairn daemon restart: a new daemon (this program) takes every mount of
 * the running one over; nothing is unmounted (fs/handover.c).
 */
static int daemon_restart(struct cli *cli)
{
	char store[PATH_MAX], sock[128], line[1200];
	json_object *req = cfs_ctl_request("hello"), *reply = NULL;
	unsigned n = 0, points;
	double ms = 0;
	int lock, ret, old, pid = 0;
	size_t cache;

	if (!realpath(cli->store_dir, store))
		return cli_fail(-errno, "cannot open store '%s'", cli->store_dir);
	ret = cfs_ctl_daemon_socket(store, sock, sizeof(sock));
	lock = ret ? ret : cfs_ctl_lock_open(store);
	if (lock < 0) {
		json_object_put(req);
		return cli_fail(lock, "cannot restart the daemon of store '%s'", store);
	}
	/* no mount, umount or other restart comes in meanwhile */
	flock(lock, LOCK_EX);
	ret = req ? cfs_ctl_call(sock, req, NULL, 0, 5000, &reply) : -ENOMEM;
	json_object_put(req);
	if (ret == -ENOENT || ret == -ECONNREFUSED) {
		close(lock);
		json_object_put(reply);
		cairn_err_clear();
		return cli_fail(0, "no daemon serves store '%s': nothing to restart", store);
	}
	if (ret) {
		close(lock);
		json_object_put(reply);
		return cli_fail(ret, "cannot restart the daemon of store '%s'", store);
	}
	old = (int)cfs_ctl_int(reply, "pid");
	cache = (size_t)cfs_ctl_int(reply, "cache_bytes");
	points = (unsigned)cfs_ctl_int(reply, "mounts");
	json_object_put(reply);
	ret = start_daemon(store, cache ? cache : CFS_CACHE_DEFAULT, true, line, sizeof(line));
	if (!ret && sscanf(line, "ok %u %lf %d", &n, &ms, &pid) != 3)
		ret = cairn_err(-EPROTO, "the new daemon said '%s'", line);
	if (ret) {
		close(lock);
		return cli_fail(ret, "cannot restart the daemon of store '%s' (daemon %d serves on)",
				store, old);
	}
	/* the old daemon lets go and exits */
	for (int k = 0; k < 200 && cfs_pid_alive(old); k++)
		usleep(50000);
	close(lock);
	printf("daemon %d handed %u mount%s (%u FUSE session%s) to daemon %d in %.1f ms%s\n", old,
	       points, points == 1 ? "" : "s", n, n == 1 ? "" : "s", pid, ms,
	       cfs_pid_alive(old) ? " (the old one has not exited yet)" : "");
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_daemon(struct cli *cli, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "restart") == 0)
		return daemon_restart(cli);
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return daemon_serve(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "status") == 0) {
		bool json = argc == 3 && strcmp(argv[2], "--json") == 0;

		if (argc > 3 || (argc == 3 && !json))
			return cli_usage("daemon", "daemon status takes only --json");
		return daemon_status(cli, json);
	}
	return cli_usage("daemon", "daemon takes status, restart or serve");
}
