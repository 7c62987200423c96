/* SPDX-License-Identifier: MIT */
/*
 * cmd_gc.c - cairn gc: prune history, drop what nothing keeps, give the
 * space back.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "gc.h"
#include "control.h"

/* The leases of running mounts, read afresh at each of gc's marking rounds. */
static int read_leases(void *ctx, struct cairn_id **out, size_t *n)
{
	const struct cli *cli = ctx;
	struct cfs_record *rs = NULL;
	struct cairn_id *leases = NULL;
	int nr = cfs_records_load(cli->store_dir, &rs), ret = nr < 0 ? nr : 0;

	*n = 0;
	for (int i = 0; i < nr; i++) {
		struct cairn_id *p;

		if (!rs[i].alive)
			continue; /* a killed daemon reads nothing more */
		p = realloc(leases, (*n + rs[i].nleases) * sizeof(*p) + 1);

		if (!p) {
			ret = -ENOMEM;
			break;
		}
		leases = p;
		memcpy(leases + *n, rs[i].leases, rs[i].nleases * sizeof(*p));
		*n += rs[i].nleases;
	}
	cfs_records_free(rs, nr);
	*out = leases;
	return ret;
}

int cmd_gc(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' },
		{ "compact", no_argument, NULL, 'c' },
		{ "remote", required_argument, NULL, 'r' },
		{ 0 },
	};
	bool compact = false;
	struct cairn_gc_opts o = { .keep = -1, .repack_below = 0.75 };
	struct cairn_gc_stats st;
	struct cairn_store_space before, after;
	struct cairn_store *s;
	char a[32], b[32], c[32], d[32];
	const char *remote = NULL;
	int opt, lock, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;

		if (opt == 'c') {
			compact = true;
			continue;
		}
		if (opt == 'r') {
			remote = optarg;
			continue;
		}
		if (opt != 'k')
			return cli_usage("gc", "unknown option '%s'", argv[optind - 1]);
		o.keep = strtoll(optarg, &end, 10);
		if (*end || o.keep < 1)
			return cli_usage("gc", "--keep takes a number of generations >= 1, not '%s'",
					 optarg);
	}
	if (optind != argc)
		return cli_usage("gc", "gc takes no arguments");
	if (remote && compact)
		return cli_usage("gc", "--compact is for the local store, not --remote");
	if (remote)
		return cli_gc_remote(cli, remote, o.keep);
	if (cli_open(cli, true, &s))
		return 1;
	lock = cairn_gc_lock(s, true);
	if (lock < 0) {
		cairn_store_close(s);
		return cli_fail(lock, "cannot collect garbage");
	}
	/* what running mounts serve, or served to files still open, stays */
	o.leases_fn = read_leases;
	o.ctx = cli;
	if (compact)
		o.repack_below = 1.0; /* every pack with a dead byte is rewritten */
	cairn_store_space(s, &before);
	ret = cairn_gc(s, &o, &st);
	cairn_store_space(s, &after);
	if (!ret && compact) {
		ret = cairn_store_compact(s); /* closes s */
		s = NULL;
		if (ret == -EBUSY) {
			/* the packs are rewritten already; only data.mdb keeps its size */
			printf("data.mdb not compacted: %s\n", cairn_errmsg());
			cairn_err_clear();
			compact = false;
			ret = 0;
		}
		if (!ret && cli_open(cli, false, &s) == 0)
			cairn_store_space(s, &after);
	}
	close(lock);
	cairn_store_close(s);
	if (ret)
		return cli_fail(ret, "cannot collect garbage");
	printf("removed %llu generations, %llu images, %llu layers, %llu nodes, %llu content lists, "
	       "%llu chunks",
	       (unsigned long long)st.generations, (unsigned long long)st.images,
	       (unsigned long long)st.layers, (unsigned long long)st.nodes,
	       (unsigned long long)st.contents, (unsigned long long)st.chunks);
	if (st.lazy)
		printf(", %llu lazy records (chunks no kept image needs, or fetched since)",
		       (unsigned long long)st.lazy);
	putchar('\n');
	printf("packs: %llu rewritten, %llu removed: %s -> %s\n",
	       (unsigned long long)st.packs_rewritten, (unsigned long long)st.packs_removed,
	       cli_bytes(a, sizeof(a), st.pack_bytes_before),
	       cli_bytes(b, sizeof(b), st.pack_bytes_after));
	printf("LMDB used: %s -> %s; data.mdb: %s -> %s%s\n",
	       cli_bytes(c, sizeof(c), before.used_bytes), cli_bytes(d, sizeof(d), after.used_bytes),
	       cli_bytes(a, sizeof(a), before.file_bytes), cli_bytes(b, sizeof(b), after.file_bytes),
	       compact ? "" : " (freed pages are reused; --compact shrinks the file)");
	return fflush(stdout) == 0 ? 0 : 1;
}
