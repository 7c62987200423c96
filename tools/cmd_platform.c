/* SPDX-License-Identifier: MIT */
/*
 * cmd_platform.c - cairn upgrade, rollback, platforms, history.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"
#include "control.h"
#include "hidden.h"
#include "platform.h"
#include "remotes.h"

struct tags_of {
	const struct cairn_id *id;
	char *buf;
	size_t len, used;
};

static int tag_of(const char *name, size_t len, const struct cairn_id *image, void *arg)
{
	struct tags_of *o = arg;

	if (!cairn_id_eq(image, o->id))
		return 0;
	o->used += (size_t)snprintf(o->buf + o->used, o->used < o->len ? o->len - o->used : 0,
				    "%s%.*s", o->used ? "," : "", (int)len, name);
	return o->used >= o->len; /* full: stop */
}

/* The tags naming id, comma-separated, into buf ("" when none). */
static void tags_of(struct cairn_txn *t, const struct cairn_id *id, char *buf, size_t len)
{
	struct tags_of o = { .id = id, .buf = buf, .len = len };

	buf[0] = '\0';
	if (cairn_tag_each(t, tag_of, &o) < 0)
		cairn_err_clear();
}

/*
 * A writable mount keeps its upper on top of the new image: says which of
 * its entries hide paths this switch changed (the image it served before
 * against the new one).
 */
static void report_hidden(struct cli *cli, const struct cfs_record *r, const struct cairn_id *image,
			  FILE *out)
{
	struct cairn_store *s;
	char line[1024];
	int n;

	if (!image || !*r->upper || cairn_id_eq(&r->image, image) ||
	    cairn_store_open(cli->store_dir, 0, NULL, &s))
		return;
	n = hidden_summary(s, r->upper, &r->image, image, line, sizeof(line));
	if (n > 0)
		fprintf(out, "    %s\n", line);
	else if (n < 0)
		fprintf(out, "    cannot tell what its upper hides: %s\n", cairn_errmsg());
	cairn_err_clear();
	cairn_store_close(s);
}

/* The image platform name is on now (what its mounts switch to). */
static bool platform_image(struct cli *cli, const char *name, struct cairn_id *image)
{
	struct cairn_platform p;
	struct cairn_store *s;
	struct cairn_txn *t;
	bool ok = false;

	if (cairn_store_open(cli->store_dir, 0, NULL, &s))
		return false;
	if (cairn_txn_begin(s, false, &t) == 0) {
		ok = cairn_platform_get(t, name, &p) == 0;
		cairn_txn_abort(t);
	}
	cairn_store_close(s);
	cairn_err_clear();
	if (ok)
		*image = p.image;
	return ok;
}

/*
 * Tells every running mount of the platform to switch and reports each one's
 * answer: one request per daemon (the shared daemon switches all its mounts
 * of the platform at once), all daemons asked at once, 5 s in all. A mount
 * that does not answer in time does not fail the command: the pointer has
 * moved; it follows on its next switch or remount.
 */
void cli_notify_mounts(struct cli *cli, const char *name, FILE *out)
{
	struct cairn_id image;
	bool have_image = platform_image(cli, name, &image);
	struct cfs_record *rs = NULL;
	int n = cfs_records_load(cli->store_dir, &rs);
	int64_t t0 = cairn_now_ns(), deadline = t0 + 5000ll * 1000000;
	unsigned nd = 0, answered = 0;
	int *socks = calloc((size_t)(n > 0 ? n : 1), sizeof(*socks));
	const char **paths = calloc((size_t)(n > 0 ? n : 1), sizeof(*paths));
	json_object *req = cfs_ctl_request("switch");

	if (!socks || !paths || !req)
		goto out;
	json_object_object_add(req, "platform", json_object_new_string(name));
	for (int i = 0; i < n; i++) {
		bool seen = false;

		if (strcmp(rs[i].platform, name) != 0 || !rs[i].alive)
			continue;
		for (unsigned j = 0; j < nd; j++)
			seen |= strcmp(paths[j], rs[i].socket) == 0;
		if (seen)
			continue;
		paths[nd] = rs[i].socket;
		socks[nd] = cfs_ctl_connect(rs[i].socket);
		if (socks[nd] >= 0 && cfs_ctl_send(socks[nd], req, NULL, 0)) {
			close(socks[nd]);
			socks[nd] = -1;
		}
		nd++;
	}
	for (unsigned j = 0; j < nd; j++) {
		json_object *reply = NULL, *arr;
		int left = (int)((deadline - cairn_now_ns()) / 1000000);

		if (socks[j] < 0 ||
		    cfs_ctl_recv(socks[j], left > 0 ? left : 0, &reply, NULL, NULL, 0) != 0 ||
		    !json_object_object_get_ex(reply, "mounts", &arr)) {
			const char *err = cfs_ctl_str(reply, "error");

			cairn_err_clear();
			for (int i = 0; i < n; i++)
				if (strcmp(rs[i].platform, name) == 0 && rs[i].alive &&
				    strcmp(rs[i].socket, paths[j]) == 0)
					fprintf(out, "  mount %s (pid %d, %s): %s\n", rs[i].mountpoint,
					       rs[i].pid, rs[i].id, *err ? err : "not answering");
			json_object_put(reply);
			continue;
		}
		for (size_t k = 0; k < json_object_array_length(arr); k++) {
			json_object *m = json_object_array_get_idx(arr, k);

			fprintf(out, "  mount %s (pid %lld, %s): %s\n", cfs_ctl_str(m, "mountpoint"),
			       (long long)cfs_ctl_int(m, "pid"), cfs_ctl_str(m, "id"),
			       cfs_ctl_str(m, "outcome"));
			answered++;
			/* what the mount's upper hides of the paths the switch changed */
			for (int i = 0; i < n; i++)
				if (strcmp(rs[i].id, cfs_ctl_str(m, "id")) == 0)
					report_hidden(cli, &rs[i], have_image ? &image : NULL, out);
		}
		json_object_put(reply);
	}
	if (answered)
		fprintf(out, "  %u mount%s switched in %.1f ms\n", answered, answered == 1 ? "" : "s",
		       (double)(cairn_now_ns() - t0) / 1e6);
out:
	for (unsigned j = 0; j < nd; j++)
		if (socks[j] >= 0)
			close(socks[j]);
	free(socks);
	free(paths);
	json_object_put(req);
	cfs_records_free(rs, n);
}

/* "upgraded" line: platform, generation, image and its tags. */
static void report(struct cairn_store *s, const char *verb, const char *name, uint64_t gen,
		   const struct cairn_id *image)
{
	char hex[CAIRN_ID_HEX_LEN + 1], tags[256] = "";
	struct cairn_txn *t;

	cairn_id_hex(image, hex);
	if (cairn_txn_begin(s, false, &t) == 0) {
		tags_of(t, image, tags, sizeof(tags));
		cairn_txn_abort(t);
	}
	printf("%s %s to generation %llu: image %.12s%s%s%s\n", name, verb,
	       (unsigned long long)gen, hex, *tags ? " (" : "", tags, *tags ? ")" : "");
}

int cmd_upgrade(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_platform before = { 0 };
	struct cairn_id image;
	uint64_t gen;
	int ret;

	if (argc != 3)
		return cli_usage("upgrade", "upgrade takes a platform and an image");
	if (cairn_platform_check(argv[1]))
		return cli_usage("upgrade", "'%s' is not a valid platform name (letters, digits, "
					    "'.', '_', '-'; at most 128)", argv[1]);
	if (cli_open(cli, true, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		ret = cli_resolve(t, argv[2], &image, NULL);
		if (!ret && cairn_platform_get(t, argv[1], &before))
			before.generation = 0;
		cairn_txn_abort(t);
	}
	if (!ret)
		ret = cairn_platform_upgrade(s, argv[1], &image, &gen);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot upgrade '%s' to '%s'", argv[1], argv[2]);
	}
	if (before.generation == gen)
		printf("%s is already on that image (generation %llu)\n", argv[1],
		       (unsigned long long)gen);
	else
		report(s, before.generation ? "upgraded" : "created", argv[1], gen, &image);
	cairn_store_close(s);
	if (before.generation != gen) {
		fflush(stdout);
		cli_notify_mounts(cli, argv[1], stdout);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_rollback(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "to", required_argument, NULL, 't' }, { 0 } };
	struct cairn_store *s;
	struct cairn_id image;
	uint64_t to = 0, gen;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;

		if (opt != 't')
			return cli_usage("rollback", "unknown option '%s'", argv[optind - 1]);
		to = strtoull(optarg, &end, 10);
		if (*end || to == 0)
			return cli_usage("rollback", "--to takes a generation number, not '%s'",
					 optarg);
	}
	if (optind != argc - 1)
		return cli_usage("rollback", "rollback takes a platform");
	if (cli_open(cli, true, &s))
		return 1;
	ret = cairn_platform_rollback(s, argv[optind], to, &gen, &image);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot roll '%s' back", argv[optind]);
	}
	report(s, "rolled back", argv[optind], gen, &image);
	{
		struct cairn_follow f;
		struct cairn_txn *t;

		if (cairn_txn_begin(s, false, &t) == 0) {
			if (cairn_follow_get(t, argv[optind], &f) == 0)
				printf("%s follows remote '%s': following is paused until 'cairn "
				       "follow %s %s --resume'\n", argv[optind], f.remote, f.remote,
				       argv[optind]);
			cairn_txn_abort(t);
		}
		cairn_err_clear();
	}
	cairn_store_close(s);
	fflush(stdout);
	cli_notify_mounts(cli, argv[optind], stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

struct platforms_ctx {
	struct cairn_txn *t;
	json_object *arr; /* NULL: a table */
};

static int platform_row(const char *name, const struct cairn_platform *p, void *arg)
{
	struct platforms_ctx *pc = arg;
	char hex[CAIRN_ID_HEX_LEN + 1], tags[256];

	cairn_id_hex(&p->image, hex);
	tags_of(pc->t, &p->image, tags, sizeof(tags));
	if (pc->arr) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "platform", json_object_new_string(name));
		json_object_object_add(o, "generation", json_object_new_int64((int64_t)p->generation));
		json_object_object_add(o, "image", json_object_new_string(hex));
		json_object_object_add(o, "tags", json_object_new_string(tags));
		json_object_array_add(pc->arr, o);
	} else {
		printf("%-20s %5llu  %-14.12s %s\n", name, (unsigned long long)p->generation, hex,
		       tags);
	}
	return 0;
}

int cmd_platforms(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct platforms_ctx pc = { 0 };
	struct cairn_store *s;
	bool json = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("platforms", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc)
		return cli_usage("platforms", "platforms takes no arguments");
	if (cli_open(cli, false, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &pc.t);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot list platforms");
	}
	if (json)
		pc.arr = json_object_new_array();
	else
		printf("%-20s %5s  %-14s %s\n", "PLATFORM", "GEN", "IMAGE", "TAGS");
	ret = cairn_platform_each(pc.t, platform_row, &pc);
	cairn_txn_abort(pc.t);
	cairn_store_close(s);
	if (json) {
		puts(json_object_to_json_string_ext(pc.arr, JSON_C_TO_STRING_PRETTY |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(pc.arr);
	}
	if (ret)
		return cli_fail(ret, "cannot list platforms");
	return fflush(stdout) == 0 ? 0 : 1;
}

struct history_ctx {
	struct cairn_txn *t;
	json_object *arr;
	uint64_t current;
};

static int history_row(const struct cairn_generation *g, void *arg)
{
	struct history_ctx *h = arg;
	char hex[CAIRN_ID_HEX_LEN + 1], tags[256], when[64], action[48];

	cairn_id_hex(&g->image, hex);
	tags_of(h->t, &g->image, tags, sizeof(tags));
	cli_time(when, sizeof(when), g->time_ns);
	if (g->action == CAIRN_ACTION_ROLLBACK)
		snprintf(action, sizeof(action), "rollback to %llu", (unsigned long long)g->restored);
	else
		snprintf(action, sizeof(action), "upgrade");
	if (h->arr) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "generation", json_object_new_int64((int64_t)g->generation));
		json_object_object_add(o, "time", json_object_new_string(when));
		json_object_object_add(o, "action", json_object_new_string(
				g->action == CAIRN_ACTION_ROLLBACK ? "rollback" : "upgrade"));
		if (g->action == CAIRN_ACTION_ROLLBACK)
			json_object_object_add(o, "restored",
					       json_object_new_int64((int64_t)g->restored));
		json_object_object_add(o, "image", json_object_new_string(hex));
		json_object_object_add(o, "tags", json_object_new_string(tags));
		json_object_object_add(o, "current",
				       json_object_new_boolean(g->generation == h->current));
		json_object_array_add(h->arr, o);
	} else {
		printf("%c%4llu  %-20s  %-16s %-14.12s %s\n", g->generation == h->current ? '*' : ' ',
		       (unsigned long long)g->generation, when, action, hex, tags);
	}
	return 0;
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct history_ctx h = { 0 };
	struct cairn_platform p;
	struct cairn_store *s;
	bool json = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("history", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc - 1)
		return cli_usage("history", "history takes a platform");
	if (cli_open(cli, false, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &h.t);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot read the history of '%s'", argv[optind]);
	}
	ret = cairn_platform_get(h.t, argv[optind], &p);
	if (ret == -ENOENT)
		ret = cairn_err(ret, "there is no such platform");
	if (!ret) {
		h.current = p.generation;
		if (json)
			h.arr = json_object_new_array();
		else
			printf(" %4s  %-20s  %-16s %-14s %s\n", "GEN", "TIME", "ACTION", "IMAGE",
			       "TAGS");
		ret = cairn_history_walk(h.t, argv[optind], history_row, &h);
	}
	cairn_txn_abort(h.t);
	cairn_store_close(s);
	if (ret) {
		json_object_put(h.arr);
		return cli_fail(ret, "cannot read the history of '%s'", argv[optind]);
	}
	if (json) {
		puts(json_object_to_json_string_ext(h.arr, JSON_C_TO_STRING_PRETTY |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(h.arr);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
