/* SPDX-License-Identifier: MIT */
/*
 * cmd_fsck.c - cairn fsck: prints what store/fsck.c finds.
 *
 * Exit status: 0 clean, 1 problems found, 2 the check could not run.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "fsck.h"

/* Shown by 'cairn fsck --help'. */
extern const char cmd_fsck_help[];
const char cmd_fsck_help[] =
	"Checks the whole store in one read transaction (other commands may run\n"
	"meanwhile): every pack file is there with its committed bytes; every chunk\n"
	"lies within its pack and decodes to bytes that hash to its id; every content\n"
	"list parses, hashes to its id, and its chunks exist with the lengths it says;\n"
	"every node parses strictly and hashes to its id; every image, layer, tag and\n"
	"platform record is sound; and everything the images and layers reach exists,\n"
	"with the type and size the reference says.\n"
	"\n"
	"A chunk a lazy pull left on its remote (known by its record, fetched on first\n"
	"read) is not damage: the summary counts them as not fetched yet. Its record\n"
	"must parse and name a remote the store has.\n"
	"\n"
	"Prints one line per problem, '<kind> <id>: <what is wrong>', then a summary.\n"
	"--json prints {\"problems\": [{\"kind\", \"id\", \"message\"}...], \"chunks\": N,\n"
	"\"contents\": N, \"nodes\": N, ..., \"lazy\": N, \"not_fetched\": N} instead.\n"
	"\n"
	"Exit status: 0 when the store is clean, 1 when problems were found, 2 when\n"
	"the check could not run.\n";

struct fsck_out {
	bool json, tty;
	bool progress_shown;
	int64_t last_ns;
	json_object *problems;
};

static void clear_progress(struct fsck_out *o)
{
	if (o->progress_shown) {
		fputs("\r\033[K", stderr);
		o->progress_shown = false;
	}
}

static void on_problem(void *ctx, const struct cairn_fsck_problem *p)
{
	struct fsck_out *o = ctx;

	if (o->json) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "kind", json_object_new_string(p->kind));
		cli_json_add_bytes(j, "id", p->name, p->name_len);
		json_object_object_add(j, "message", cli_json_text(p->msg, strlen(p->msg)));
		json_object_array_add(o->problems, j);
		return;
	}
	clear_progress(o);
	printf("%s ", p->kind);
	cli_print_escaped(stdout, p->name, p->name_len);
	printf(": %s\n", p->msg);
}

static void on_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct fsck_out *o = ctx;
	int64_t now;

	if (!o->tty)
		return;
	now = cairn_now_ns();
	if (done != total && now - o->last_ns < 100000000)
		return;
	o->last_ns = now;
	fprintf(stderr, "\r\033[Kfsck: %s %llu/%llu", phase, (unsigned long long)done,
		(unsigned long long)total);
	o->progress_shown = true;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static void print_summary(const struct cairn_fsck_stats *st)
{
	char b[32];

	printf("checked %llu %s, %llu %s (%s), %llu content %s, %llu %s, %llu %s, %llu %s, "
	       "%llu %s, %llu %s; %llu objects reachable: ",
	       (unsigned long long)st->packs, plural(st->packs, "pack", "packs"),
	       (unsigned long long)st->chunks, plural(st->chunks, "chunk", "chunks"),
	       cli_bytes(b, sizeof(b), st->chunk_bytes), (unsigned long long)st->contents,
	       plural(st->contents, "list", "lists"), (unsigned long long)st->nodes,
	       plural(st->nodes, "node", "nodes"), (unsigned long long)st->layers,
	       plural(st->layers, "layer", "layers"), (unsigned long long)st->images,
	       plural(st->images, "image", "images"), (unsigned long long)st->tags,
	       plural(st->tags, "tag", "tags"), (unsigned long long)st->platforms,
	       plural(st->platforms, "platform", "platforms"),
	       (unsigned long long)st->reachable);
	if (st->not_fetched)
		printf("%llu %s not fetched yet (lazy), ", (unsigned long long)st->not_fetched,
		       plural(st->not_fetched, "chunk", "chunks"));
	if (st->problems)
		printf("%llu %s\n", (unsigned long long)st->problems,
		       plural(st->problems, "problem", "problems"));
	else
		printf("no problems\n");
}

static void print_json(struct fsck_out *o, const struct cairn_fsck_stats *st)
{
	json_object *j = json_object_new_object();

	json_object_object_add(j, "problems", o->problems);
	o->problems = NULL;
	json_object_object_add(j, "problem_count", json_object_new_int64((int64_t)st->problems));
	json_object_object_add(j, "packs", json_object_new_int64((int64_t)st->packs));
	json_object_object_add(j, "chunks", json_object_new_int64((int64_t)st->chunks));
	json_object_object_add(j, "chunk_bytes", json_object_new_int64((int64_t)st->chunk_bytes));
	json_object_object_add(j, "contents", json_object_new_int64((int64_t)st->contents));
	json_object_object_add(j, "nodes", json_object_new_int64((int64_t)st->nodes));
	json_object_object_add(j, "layers", json_object_new_int64((int64_t)st->layers));
	json_object_object_add(j, "images", json_object_new_int64((int64_t)st->images));
	json_object_object_add(j, "tags", json_object_new_int64((int64_t)st->tags));
	json_object_object_add(j, "platforms", json_object_new_int64((int64_t)st->platforms));
	json_object_object_add(j, "reachable", json_object_new_int64((int64_t)st->reachable));
	json_object_object_add(j, "lazy", json_object_new_int64((int64_t)st->lazy));
	json_object_object_add(j, "not_fetched", json_object_new_int64((int64_t)st->not_fetched));
	puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

int cmd_fsck(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct fsck_out o = { .tty = cli->tty };
	struct cairn_fsck_opts fo = { .problem = on_problem, .progress = on_progress, .ctx = &o };
	struct cairn_fsck_stats st;
	struct cairn_store *s;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("fsck", "unknown option '%s'", argv[optind - 1]);
		o.json = true;
	}
	if (optind != argc)
		return cli_usage("fsck", "fsck takes no arguments");
	if (cli_open(cli, false, &s))
		return 2;
	if (o.json)
		o.problems = json_object_new_array();
	ret = cairn_fsck(s, &fo, &st);
	clear_progress(&o);
	cairn_store_close(s);
	if (ret) {
		json_object_put(o.problems);
		cli_fail(ret, "cannot check store '%s'", cli->store_dir);
		return 2;
	}
	if (o.json)
		print_json(&o, &st);
	else
		print_summary(&st);
	if (fflush(stdout)) {
		cli_fail(-errno, "cannot write to stdout");
		return 2;
	}
	return st.problems ? 1 : 0;
}
