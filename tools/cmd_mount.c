/* SPDX-License-Identifier: MIT */
/*
 * cmd_mount.c - cairn mount, umount, mounts, stats.
 *
 * mount checks what it can before forking (the image, the directory), then
 * forks a daemon that opens the store itself (LMDB environments must not
 * cross a fork), mounts, and reports back through a pipe: the command
 * returns once the mount is usable, or prints the daemon's one error line.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "cli.h"
#include "fs.h"
#include "mounts.h"
#include "platform.h"

/* Is path (canonical) a mount point right now? */
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
		{ 0 },
	};
	struct cfs_options o = { .cache_bytes = CFS_CACHE_DEFAULT };
	char mp[PATH_MAX], store[PATH_MAX], line[1200], upper[PATH_MAX];
	bool ro = false;
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_image img;
	struct stat st;
	int opt, ret, pfd[2];
	pid_t pid;
	ssize_t n;

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
			o.foreground = true;
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
			o.cache_bytes = (size_t)v;
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
			o.foreground = true;
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
	o.store_dir = store;
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
	cairn_store_close(s); /* the daemon opens its own, after the fork */
	if (ret)
		return cli_fail(ret, "cannot mount '%s'", o.source);

	if (o.foreground)
		return cfs_serve(&o, -1) ? cli_fail(0, "cannot mount '%s' on '%s': %s", o.source,
						    mp, cairn_errmsg())
					 : 0;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return cli_fail(-errno, "cannot mount '%s'", o.source);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return cli_fail(-errno, "cannot mount '%s'", o.source);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		close(pfd[0]);
		setsid();
		if (chdir("/") < 0)
			_exit(1);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			close(null);
		}
		_exit(cfs_serve(&o, pfd[1]) ? 1 : 0);
	}
	close(pfd[1]);
	n = read(pfd[0], line, sizeof(line) - 1);
	close(pfd[0]);
	line[n > 0 ? n : 0] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (strcmp(line, "ok") == 0)
		return 0;
	waitpid(pid, NULL, 0);
	return cli_fail(0, "cannot mount '%s' on '%s': %s", o.source, argv[optind + 1],
			*line ? line : "the daemon died");
}

/* Is pid a live process (not gone, not a zombie)? */
static bool alive(int pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (kill(pid, 0) < 0 && errno == ESRCH)
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

static void record_free(struct record *r)
{
	free(r->mountpoint);
	free(r->source);
	free(r->image);
	free(r->socket);
	free(r->platform);
	free(r->upper);
	free(r->leases);
}

static char *jstr(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_get_string(v)
		       ? strdup(json_object_get_string(v))
		       : strdup("");
}

int load_records(const char *store, struct record **out)
{
	char run[4096], path[8192];
	struct record *rs = NULL;
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (cfs_run_dir(store, run, sizeof(run)))
		return 0;
	d = opendir(run);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		json_object *o;
		struct record r = { 0 };
		int pid;
		char tail;

		/* exactly PID.json: not a PID.json.tmp being written */
		if (sscanf(de->d_name, "%d.jso%c", &pid, &tail) != 2 || tail != 'n' ||
		    strcmp(strchr(de->d_name, '.'), ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", run, de->d_name);
		if (!alive(pid)) {
			unlink(path); /* the daemon is gone */
			snprintf(path, sizeof(path), "%s/%d.sock", run, pid);
			unlink(path);
			continue;
		}
		o = json_object_from_file(path);
		if (!o)
			continue;
		r.pid = pid;
		r.mountpoint = jstr(o, "mountpoint");
		r.source = jstr(o, "source");
		r.image = jstr(o, "image");
		r.socket = jstr(o, "socket");
		r.platform = jstr(o, "platform");
		r.upper = jstr(o, "upper");
		{
			json_object *l;

			if (json_object_object_get_ex(o, "leases", &l) &&
			    json_object_is_type(l, json_type_array)) {
				size_t nl = json_object_array_length(l);

				r.leases = calloc(nl ? nl : 1, sizeof(*r.leases));
				for (size_t j = 0; r.leases && j < nl; j++) {
					const char *h = json_object_get_string(
						json_object_array_get_idx(l, j));

					if (h && cairn_id_parse_prefix(h, &r.leases[r.nleases]) ==
							 CAIRN_ID_HEX_LEN)
						r.nleases++;
				}
			}
		}
		{
			json_object *g;

			r.generation = json_object_object_get_ex(o, "generation", &g)
					       ? (uint64_t)json_object_get_int64(g)
					       : 0;
		}
		json_object_put(o);
		{
			struct record *p = realloc(rs, (size_t)(n + 1) * sizeof(*p));

			if (!p) {
				record_free(&r);
				break;
			}
			rs = p;
			rs[n++] = r;
		}
	}
	closedir(d);
	*out = rs;
	return n;
}

void records_free(struct record *rs, int n)
{
	for (int i = 0; i < n; i++)
		record_free(&rs[i]);
	free(rs);
}

int cmd_mounts(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct record *rs = NULL;
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
	if (json) {
		json_object *arr = json_object_new_array();

		for (int i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "pid", json_object_new_int(rs[i].pid));
			cli_json_add_bytes(o, "mountpoint", rs[i].mountpoint,
					   strlen(rs[i].mountpoint));
			cli_json_add_bytes(o, "source", rs[i].source, strlen(rs[i].source));
			json_object_object_add(o, "image", json_object_new_string(rs[i].image));
			json_object_object_add(o, "platform", json_object_new_string(rs[i].platform));
			json_object_object_add(o, "generation",
					       json_object_new_int64((int64_t)rs[i].generation));
			if (*rs[i].upper)
				cli_json_add_bytes(o, "upper", rs[i].upper, strlen(rs[i].upper));
			else
				json_object_object_add(o, "upper", NULL);
			json_object_array_add(arr, o);
		}
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		printf("%-8s %-14s %-20s %5s  %s\n", "PID", "IMAGE", "SOURCE", "GEN", "MOUNTPOINT");
		for (int i = 0; i < n; i++) {
			char gen[24] = "-";

			if (*rs[i].platform)
				snprintf(gen, sizeof(gen), "%llu", (unsigned long long)rs[i].generation);
			printf("%-8d %-14.12s %-20s %5s  %s%s%s\n", rs[i].pid, rs[i].image,
			       rs[i].source, gen, rs[i].mountpoint, *rs[i].upper ? "  upper=" : "",
			       rs[i].upper);
		}
	}
	records_free(rs, n);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The record of the mount at dir (canonical), or -1. */
static int find_record(struct record *rs, int n, const char *dir)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rs[i].mountpoint, dir) == 0)
			return i;
	return -1;
}

int control_send(const char *sock_path, const char *req)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t plen = strlen(sock_path);
	int fd, ret;

	if (plen >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, sock_path, plen);
	if (sock_path[0] == '@')
		addr.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen)) < 0 ||
	    write(fd, req, strlen(req)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int control_collect(int *fds, char **bufs, size_t len, int n, int timeout_ms)
{
	int64_t deadline = cairn_now_ns() + (int64_t)timeout_ms * 1000000;
	size_t *got = calloc((size_t)(n ? n : 1), sizeof(*got));
	struct pollfd *p = calloc((size_t)(n ? n : 1), sizeof(*p));
	int open = 0;

	if (!got || !p) {
		free(got);
		free(p);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		bufs[i][0] = '\0';
		open += fds[i] >= 0;
	}
	while (open > 0) {
		int left = (int)((deadline - cairn_now_ns()) / 1000000), k;

		if (left <= 0)
			break;
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		k = poll(p, (nfds_t)n, left);
		if (k <= 0)
			break;
		for (int i = 0; i < n; i++) {
			ssize_t r;

			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(fds[i], bufs[i] + got[i], len - 1 - got[i]);
			if (r > 0)
				got[i] += (size_t)r;
			bufs[i][got[i]] = '\0';
			if (r <= 0 || got[i] == len - 1 || memchr(bufs[i], '\n', got[i])) {
				close(fds[i]);
				fds[i] = -1; /* answered (or gone) */
				open--;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -2; /* no answer in time */
		}
	}
	free(got);
	free(p);
	return 0;
}

int control_request(const char *sock_path, const char *req, char *buf, size_t len)
{
	int fd = control_send(sock_path, req);

	if (fd < 0)
		return fd;
	control_collect(&fd, &buf, len, 1, 5000);
	if (fd == -2)
		return -ETIMEDOUT;
	return *buf ? 0 : -EPROTO;
}

int cmd_stats(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct record *rs = NULL;
	char dir[PATH_MAX], buf[4096];
	bool json = false;
	int opt, n, i, ret;
	json_object *o;

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
	i = find_record(rs, n, dir);
	if (i < 0) {
		records_free(rs, n);
		return cli_fail(0, "no stats for '%s': not a cairn mount of store '%s'",
				argv[optind], cli->store_dir);
	}
	ret = control_request(rs[i].socket, "stats\n", buf, sizeof(buf));
	records_free(rs, n);
	if (ret)
		return cli_fail(ret, "no stats for '%s': its daemon does not answer", argv[optind]);
	if (json) {
		fputs(buf, stdout);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	o = json_tokener_parse(buf);
	if (!o)
		return cli_fail(0, "no stats for '%s': a garbled answer", argv[optind]);
	json_object_object_foreach(o, key, val)
		printf("%-12s %s\n", key, json_object_get_string(val));
	json_object_put(o);
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
	struct record *rs = NULL;
	char dir[PATH_MAX], who[1024];
	bool lazy = false;
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
	n = load_records(cli->store_dir, &rs);
	i = find_record(rs, n, dir);
	if (i >= 0)
		pid = rs[i].pid;
	records_free(rs, n);
	if (!is_mountpoint(dir))
		return cli_fail(0, "cannot unmount '%s': not mounted", argv[optind]);
	if (umount2(dir, lazy ? MNT_DETACH : 0) < 0) {
		int err = errno;

		if (err == EBUSY) {
			holders(dir, who, sizeof(who));
			return cli_fail(0, "cannot unmount '%s': busy%s%s (or use --lazy)", argv[optind],
					*who ? ", in use by " : "", who);
		}
		return cli_fail(-err, "cannot unmount '%s'", argv[optind]);
	}
	/*
	 * the daemon sees the unmount and exits; wait for it, bounded (after
	 * --lazy it exits only once the last user of the mount is gone)
	 */
	if (pid > 0 && !lazy && !wait_exit(pid, UMOUNT_WAIT_MS))
		fprintf(stderr, "cairn: warning: the daemon of '%s' (pid %d) has not exited after %d s\n",
			argv[optind], pid, UMOUNT_WAIT_MS / 1000);
	return 0;
}
