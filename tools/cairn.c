/* SPDX-License-Identifier: MIT */
/*
 * cairn.c - the command-line program: global options, the command table,
 * and the helpers every command shares.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lazy.h"

static const struct cli_command commands[] = {
	{ "import", cmd_import,
	  "SRC [--tag NAME] [--on IMAGE] [-m MSG] [--level N] [--max-bytes N] [--max-entries N]",
	  "import a directory, a tar stream or an OCI layout as a new image",
	  "SRC is a directory, a tar file (.tar, .tar.gz, .tar.zst: pax, GNU or ustar,\n"
	  "read through libarchive), '-' for a tar on stdin, or oci:DIR[:REF] for an OCI\n"
	  "image layout (the manifest index.json names REF, or every manifest, each an\n"
	  "image tagged by its name unless --tag). Prints each image id.\n"
	  "--on IMAGE makes SRC a layer over IMAGE: OCI whiteouts apply ('.wh.NAME'\n"
	  "deletes NAME below, '.wh..wh..opq' hides a directory's contents below), and\n"
	  "the new image's layers are IMAGE's and this one. Without --on a whiteout is\n"
	  "refused.\n"
	  "Tar and OCI input is untrusted: paths with '..' or a leading '/', entries\n"
	  "written through a symlink planted earlier, hard links to missing entries,\n"
	  "garbled or truncated streams, blobs that do not match their digests are\n"
	  "refused with one error, and nothing is published; dedup hits against its\n"
	  "chunks are byte-compared. --max-bytes bounds the logical bytes a tar (each\n"
	  "OCI layer) may unpack to (default 64G), --max-entries its entries (default\n"
	  "1000000: the tree's index, about 300 bytes a path, stays in memory until the\n"
	  "archive ends). A tree may be 1024 names deep at most, whatever its source.\n", true },
	{ "images", cmd_images, "[--json]", "list images with their tags" },
	{ "tag", cmd_tag, "IMAGE NAME", "name an image" },
	{ "upgrade", cmd_upgrade, "PLATFORM IMAGE",
	  "point a platform at an image (creates it the first time)",
	  "One synced transaction moves the pointer and appends a generation to the\n"
	  "platform's history; after a crash at any moment the platform is on its old\n"
	  "image or its new one. Upgrading to the current image changes nothing.\n" },
	{ "rollback", cmd_rollback, "PLATFORM [--to GEN]",
	  "point a platform back at an earlier generation's image",
	  "Without --to: the generation before the one now shown, so repeated rollbacks\n"
	  "walk further back. Each rollback appends a generation too.\n" },
	{ "platforms", cmd_platforms, "[--json]", "list platforms with their generation and image" },
	{ "history", cmd_history, "PLATFORM [--json]",
	  "a platform's generations: time, action, image (* marks the current one)" },
	{ "rmi", cmd_rmi, "IMAGE...", "remove image names (space returns with gc)" },
	{ "ls", cmd_ls, "IMAGE[:PATH] [-l] [-R] [--json]", "list a directory of an image" },
	{ "cat", cmd_cat, "IMAGE:PATH", "write a file of an image to stdout", .fetch = true },
	{ "stat", cmd_stat, "IMAGE:PATH [--json]", "show one entry's metadata" },
	{ "diff", cmd_diff, "IMAGE IMAGE [--json] [--expand] [--ignore WHAT,...] [--exit-code] [--stats]",
	  "list the paths two images differ in, and what changed", cmd_diff_help },
	{ "du", cmd_du, "[IMAGE] [--json]", "logical and stored sizes, dedup figures",
	  cmd_du_help },
	{ "export", cmd_export, "IMAGE [-o FILE | --oci DIR[:REF] [--uncompressed]]",
	  "write an image as a pax tar or into an OCI layout",
	  cmd_export_help, true },
	{ "fsck", cmd_fsck, "[--json]", "check every node and chunk of the store",
	  cmd_fsck_help },
	{ "gc", cmd_gc, "[--keep N] [--compact] | --remote NAME [--keep N]", "drop old history, unnamed images and what nothing reaches",
	  "Drops each platform's history beyond its newest N generations (never the\n"
	  "current one), then images with neither a tag nor a generation, then every node,\n"
	  "content list and chunk no kept image reaches, in bounded transactions. Images\n"
	  "running mounts serve, or served to files still open, are kept. Pack files that\n"
	  "are mostly dead are rewritten and the old ones unlinked, so the space returns\n"
	  "to the filesystem. Refuses to run beside an import. --compact also rewrites\n"
	  "every pack with any dead bytes and data.mdb without its free pages (only when\n"
	  "no other process has the store open).\n"
	  "--remote NAME collects a remote store instead: each platform's generations\n"
	  "beyond the newest N (--keep), images no tag or kept generation names, and the\n"
	  "packs no kept image needs. It refuses to run beside a push (lock objects on the\n"
	  "remote), and a push refuses to start beside it.\n" },
	{ "mount", cmd_mount,
	  "IMAGE DIR [--upper UPPERDIR | --ro] [--isolated] [-f] [-o FUSEOPTS] [--cache-size BYTES] [--dev] [--nosuid]",
	  "mount an image through FUSE, read-only or with a writable upper directory",
	  "Mounts in the caller's mount namespace and returns once the mount is usable.\n"
	  "The store's one daemon then serves it, with every other mount of the store: one\n"
	  "chunk cache, one pool of threads (the first mount starts the daemon, it exits\n"
	  "after the last; it logs to syslog). --isolated gives the mount a daemon of its\n"
	  "own instead (its own failure domain, cache and threads); -f serves it from this\n"
	  "process, in the foreground, logging to stderr. IMAGE may be a platform: the mount\n"
	  "then follows its upgrades and rollbacks live. --upper UPPERDIR (created when\n"
	  "absent) makes the mount writable: changes land in UPPERDIR/tree, the image never\n"
	  "changes; 'cairn commit' turns them into an image. One mount per upper at a time.\n"
	  "Defaults fit container roots: allow_other, default_permissions, setuid honoured\n"
	  "(--nosuid to refuse), device nodes not honoured (--dev to allow). Keep\n"
	  "mountpoints under a directory only root can enter, as container engines keep\n"
	  "theirs. --cache-size sets the chunk cache of the daemon this mount starts\n"
	  "(default 256M; a running shared daemon keeps its own). SIGTERM or SIGINT to a\n"
	  "daemon unmounts its mounts cleanly.\n" },
	{ "commit", cmd_commit, "UPPERDIR [--on IMAGE] [--tag NAME] [-m MSG]",
	  "turn an upper directory into a layer and a new image",
	  "The upper's changes (whiteouts become deletions) are stacked as a new layer on\n"
	  "IMAGE (default: the image the upper was made on, from UPPERDIR/upper.json).\n"
	  "Chunks already in the store are not stored again. An upper that a mount is\n"
	  "writing is refused: unmount it first. Prints the new image id.\n", true },
	{ "changes", cmd_changes, "UPPERDIR [--json] [--against IMAGE]",
	  "list what a container changed: A added, C changed, D deleted",
	  "Compares an upper directory with the image it was made on, like docker diff.\n"
	  "A renamed directory shows as D at its old path and A at its new one.\n"
	  "\n"
	  "--against IMAGE lists instead the upper's entries that hide a path where\n"
	  "IMAGE and the upper's image differ (after an upgrade: IMAGE is the image\n"
	  "before it), one per line with what the upper has there: metacopy (a\n"
	  "metadata-only copy still reading IMAGE's data), copy, whiteout, opaque,\n"
	  "renamed, directory (its own attributes). --json: {path, upper, image}.\n" },
	{ "umount", cmd_umount, "DIR [--lazy]", "unmount a cairn mount and wait for its daemon",
	  "A busy mount is refused with the processes holding it named; --lazy detaches\n"
	  "it now and lets it go when the last user leaves. The other mounts of its daemon\n"
	  "keep running; a daemon whose last mount this was is waited for. A mount whose\n"
	  "daemon died (Transport endpoint is not connected) is cleaned up.\n" },
	{ "mounts", cmd_mounts, "[--json]", "list mounts: id, daemon pid, image, source, mountpoint",
	  "A mount whose daemon was killed is listed as dead until 'cairn umount' cleans it.\n"
	  "PIDs marked i are --isolated daemons.\n" },
	{ "stats", cmd_stats, "DIR [--json]", "a mount's chunk cache and read counters" },
	{ "daemon", cmd_daemon, "status [--json] | restart",
	  "the store's shared daemon: its state, or a restart that unmounts nothing",
	  "One daemon per store serves every mount of the store that was not made with\n"
	  "--isolated; 'cairn mount' starts it and it exits after its last mount ends.\n"
	  "status: its pid, version, mounts, threads and cache. restart: a new daemon (this\n"
	  "cairn program, so also after an upgrade of cairn) takes every mount over: the\n"
	  "FUSE connections, inode numbers and lookup counts, open directories, uppers and\n"
	  "leases; the old daemon answers what it holds, hands over and exits. Containers\n"
	  "keep running; requests made meanwhile wait in the kernel. A daemon that speaks\n"
	  "another control protocol version is left as it is, with a message.\n"
	  "('cairn daemon serve' is how mount starts it.)\n" },
	{ "remote", cmd_remote,
	  "add NAME s3://BUCKET[/PREFIX] [--endpoint URL] [--credentials FILE] [--ca FILE] "
	  "[--timeout SECONDS] [--trust PUBKEY] | ls [--json] | rm NAME | keygen KEYFILE",
	  "name, list and forget remote stores (S3: Ceph RGW, MinIO, AWS)", cmd_remote_help,
	  .remote = true },
	{ "push", cmd_push, "IMAGE|PLATFORM REMOTE [--sign KEY] [--json]",
	  "upload what a remote lacks of an image; a platform becomes its next generation",
	  cmd_push_help, .remote = true },
	{ "pull", cmd_pull, "REMOTE IMAGE|PLATFORM [--lazy] [--tag NAME] [--json]",
	  "download what the store lacks of a remote image, tag or platform", cmd_pull_help,
	  .remote = true },
	{ "follow", cmd_follow, "REMOTE PLATFORM [--lazy] [--watch SECONDS] [--resume] [--json]",
	  "switch a platform, live, to its remote's newest generation", cmd_follow_help,
	  .remote = true },
};

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/*
 * An error is one line on stderr whatever bytes a name holds: control
 * characters (a newline in a path) are written escaped, as listings write
 * them (cli_print_escaped()).
 */
static void put_vmsg(const char *fmt, va_list ap)
{
	char *m = NULL;

	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	fputs("cairn: ", stderr);
	cli_print_escaped(stderr, m ? m : fmt, strlen(m ? m : fmt));
	free(m);
}

int cli_fail(int ret, const char *fmt, ...)
{
	const char *msg = cairn_errmsg();
	char ebuf[128];
	va_list ap;

	va_start(ap, fmt);
	put_vmsg(fmt, ap);
	va_end(ap);
	if (*msg) {
		fputs(": ", stderr);
		cli_print_escaped(stderr, msg, strlen(msg));
	} else if (ret < 0) {
		fprintf(stderr, ": %s", cairn_strerror(-ret, ebuf, sizeof(ebuf)));
	}
	fputc('\n', stderr);
	cairn_err_clear();
	return 1;
}

int cli_check_tag(const char *cmd, const char *name)
{
	if (!name || cairn_tag_check(name) == 0)
		return 0;
	return cli_usage(cmd, "'%s' is not a valid tag (letters, digits, '.', '_', '-'; at most 128)",
			 name);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	const struct cli_command *c = find_command(cmd);
	va_list ap;

	va_start(ap, fmt);
	put_vmsg(fmt, ap);
	va_end(ap);
	if (c)
		fprintf(stderr, " (usage: cairn %s %s)", c->name, c->usage);
	fputc('\n', stderr);
	return 2;
}

bool cli_help(const char *cmd, int argc, char **argv)
{
	const struct cli_command *c = find_command(cmd);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: cairn [--store DIR] %s %s\n\n%s\n", c->name, c->usage,
			       c->summary);
			if (c->help)
				printf("\n%s", c->help);
			return true;
		}
	}
	return false;
}

int cli_parse_bytes(const char *s, const char **end, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *e;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno)
		return -EINVAL;
	switch (*e) {
	case 'K': case 'k': shift = 10; e++; break;
	case 'M': case 'm': shift = 20; e++; break;
	case 'G': case 'g': shift = 30; e++; break;
	case 'T': case 't': shift = 40; e++; break;
	default: break;
	}
	if ((end ? 0 : *e) || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	if (end)
		*end = e;
	*out = (uint64_t)v << shift;
	return 0;
}

/* One MIN:AVG:MAX field of CAIRN_CHUNK_SIZES, then the character after it. */
static int chunk_size(const char **s, char sep, uint32_t *out)
{
	uint64_t v;

	if (cli_parse_bytes(*s, s, &v) || v > UINT32_MAX || **s != sep)
		return -EINVAL;
	*out = (uint32_t)v;
	(*s) += sep ? 1 : 0;
	return 0;
}

/*
 * Parameters for a store created now: the defaults, or what
 * CAIRN_CHUNK_SIZES=MIN:AVG:MAX and CAIRN_ZSTD_LEVEL=N ask for (benchmarks
 * choose the defaults with these). Returns -EINVAL on a malformed value.
 */
static int create_params(struct cairn_store_params *p)
{
	const char *sizes = getenv("CAIRN_CHUNK_SIZES");
	const char *level = getenv("CAIRN_ZSTD_LEVEL");
	struct cairn_chunker c;
	char *end;

	cairn_store_params_default(p);
	if (sizes && *sizes &&
	    (chunk_size(&sizes, ':', &p->chunk.min) || chunk_size(&sizes, ':', &p->chunk.avg) ||
	     chunk_size(&sizes, '\0', &p->chunk.max) || cairn_chunker_init(&c, &p->chunk)))
		return -EINVAL;
	if (level && *level) {
		p->zstd_level = (int)strtol(level, &end, 10);
		if (*end || p->zstd_level < 1 || p->zstd_level > 19)
			return -EINVAL;
	}
	return 0;
}

/* Does the store hold lazy records (chunks a lazy pull left on a remote)? */
static bool store_has_lazy(struct cairn_store *s)
{
	struct cairn_txn *t;
	uint64_t n = 0;

	if (cairn_txn_begin(s, false, &t) == 0) {
		if (cairn_lazy_count(t, &n))
			n = 0;
		cairn_txn_abort(t);
	}
	cairn_err_clear();
	return n > 0;
}

int cli_open(struct cli *cli, bool write, struct cairn_store **s)
{
	struct cairn_store_params params;
	int ret;

	if (write && create_params(&params)) {
		fprintf(stderr, "cairn: CAIRN_CHUNK_SIZES must be MIN:AVG:MAX (AVG a power of two, "
				"e.g. 16K:64K:256K) and CAIRN_ZSTD_LEVEL 1..19\n");
		return -EINVAL;
	}
	ret = cairn_store_open(cli->store_dir, write ? CAIRN_STORE_CREATE : 0,
			       write ? &params : NULL, s);
	if (!ret && cli->fetch && !cli_has_remote() && store_has_lazy(*s)) {
		/* chunks to fetch: cairn-remote can (it runs this command line again) */
		cairn_store_close(*s);
		if (cli_sibling_exists("cairn-remote"))
			cli_exec_remote(cli); /* returns only on failure */
		ret = cairn_store_open(cli->store_dir, write ? CAIRN_STORE_CREATE : 0,
				       write ? &params : NULL, s);
	}
	if (!ret) {
		ret = cli_store_sources(*s);
		if (ret)
			cairn_store_close(*s);
	}
	if (ret) {
		cli_fail(ret, "cannot open store '%s'", cli->store_dir);
		return ret;
	}
	return 0;
}

int cli_resolve(struct cairn_txn *t, const char *arg, struct cairn_id *id, const char **path)
{
	const char *colon = strchr(arg, ':');
	cleanup_free char *name = strndup(arg, colon ? (size_t)(colon - arg) : strlen(arg));
	int ret;

	if (!name)
		return -ENOMEM;
	ret = cairn_image_resolve(t, name, id);
	if (ret)
		return ret;
	if (path)
		*path = colon ? colon + 1 : "";
	return 0;
}

void cli_print_escaped(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", f);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
}

const char *cli_bytes(char *buf, size_t len, unsigned long long n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *cli_time(char *buf, size_t len, long long ns)
{
	time_t sec = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cairn [--store DIR] COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nAn IMAGE is a tag, a platform (its current image), PLATFORM@GEN, or an id\n"
		   "(prefix of at least 4 hex digits).\n");
	fprintf(f, "\nThe store is --store DIR, else $CAIRN_STORE, else /var/lib/cairn for root,\n"
		   "else $XDG_DATA_HOME/cairn. 'cairn COMMAND --help' describes a command.\n");
}

/* The path of prog installed beside this program: 0, or -errno. */
int cli_sibling_path(const char *prog, char *path, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", path, len - 1);
	char *slash;

	if (n <= 0)
		return -errno;
	path[n] = '\0';
	slash = strrchr(path, '/');
	slash = slash ? slash + 1 : path;
	if ((size_t)(slash - path) + strlen(prog) + 1 > len)
		return -ENAMETOOLONG;
	strcpy(slash, prog);
	return 0;
}

bool cli_sibling_exists(const char *prog)
{
	char path[PATH_MAX];

	return cli_sibling_path(prog, path, sizeof(path)) == 0 && access(path, X_OK) == 0;
}

/* Runs the same command line in the program prog, installed beside this one. */
static int exec_sibling(struct cli *cli, const char *prog)
{
	char path[PATH_MAX];
	int ret = cli_sibling_path(prog, path, sizeof(path));

	if (ret)
		return cli_fail(ret, "cannot find %s", prog);
	execv(path, cli->argv);
	return cli_fail(-errno, "cannot run '%s' (installed beside cairn)", path);
}

int cli_exec_archive(struct cli *cli)
{
	return exec_sibling(cli, "cairn-archive");
}

int cli_exec_remote(struct cli *cli)
{
	return exec_sibling(cli, "cairn-remote");
}

static char *default_store(void)
{
	const char *env = getenv("CAIRN_STORE");
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	char *p = NULL;

	if (env && *env)
		return strdup(env);
	if (geteuid() == 0)
		return strdup("/var/lib/cairn");
	if (xdg && *xdg) {
		if (asprintf(&p, "%s/cairn", xdg) < 0)
			return NULL;
	} else if (asprintf(&p, "%s/.local/share/cairn", home ? home : ".") < 0) {
		return NULL;
	}
	return p;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	cleanup_free char *store = NULL;
	const struct cli_command *c;
	struct cli cli = { 0 };
	struct rlimit rl;
	int opt;

	/* deep trees keep one directory fd per level open */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			free(store);
			store = strdup(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("cairn %s\n", CAIRN_VERSION);
			return 0;
		default:
			fprintf(stderr, "cairn: unknown option '%s'; see 'cairn --help'\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	c = find_command(argv[optind]);
	if (!c) {
		fprintf(stderr, "cairn: '%s' is not a cairn command; see 'cairn --help'\n",
			argv[optind]);
		return 2;
	}
	if (!store)
		store = default_store();
	if (!store) {
		fprintf(stderr, "cairn: out of memory\n");
		return 1;
	}
	cli.store_dir = store;
	cli.tty = isatty(STDERR_FILENO);
	cli.argv = argv;
	cli.fetch = c->fetch;
	if (c->archive && !cli_has_archive())
		return cli_exec_archive(&cli); /* --help included: it is that program's */
	if (c->remote && !cli_has_remote())
		return cli_exec_remote(&cli);
	opterr = 0; /* commands report bad options in one line of their own */
	if (cli_help(c->name, argc - optind, argv + optind))
		return 0;
	optind++;
	/* commands parse their own options from argv[optind - 1] on */
	return c->run(&cli, argc - optind + 1, argv + optind - 1);
}
