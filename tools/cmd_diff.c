/* SPDX-License-Identifier: MIT */
/*
 * cmd_diff.c - cairn diff: the paths two images differ in, and how.
 *
 * A front end on store/diff.h: the engine skips identical subtrees by id,
 * this file only prints what it reports, as lines or as one JSON array.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "diff.h"

const char cmd_diff_help[] =
	"Lists what changed from the first image to the second, one path a line in\n"
	"tree order:\n"
	"  A /path                 only in the second image\n"
	"  D /path                 only in the first image\n"
	"  M /path (what, ...)     in both, different: type, content, mode, owner,\n"
	"                          mtime, xattrs, target (symlink), device, links\n"
	"                          (hard-link group), opaque\n"
	"A directory added or removed is one line, its contents are not listed\n"
	"(--expand lists every entry below it too). A directory is listed as modified\n"
	"only when its own attributes changed; what changed inside it is listed path\n"
	"by path. Subtrees with the same id in both images are skipped unread, so the\n"
	"cost grows with the change, not with the size of the images.\n"
	"\n"
	"  --json       one JSON array of {path, change: added|removed|modified,\n"
	"               what: [...], type[, old_type]} (type letters as ls -l shows)\n"
	"  --expand     list everything below added and removed directories\n"
	"  --exit-code  exit 1 when the images differ, 0 when not, 2 on an error\n"
	"  --ignore WHAT[,WHAT...]\n"
	"               leave these attributes out (e.g. --ignore mtime): a path that\n"
	"               differs only in them is not listed\n"
	"  --stats      print on stderr the nodes read, entries visited and the time\n"
	"               the diff itself took (store open and output not included)\n"
	"\n"
	"Exits 0 whether or not the images differ, unless --exit-code.\n";

struct diff_out {
	bool json;
	unsigned ignore; /* enum cairn_diff_what bits left out */
	json_object *arr;
	unsigned long long count;
};

static const char *change_name(enum cairn_diff_kind k)
{
	return k == CAIRN_DIFF_ADDED ? "added" : k == CAIRN_DIFF_REMOVED ? "removed" : "modified";
}

static json_object *type_json(const struct cairn_node_view *v)
{
	char type[2] = { cairn_type_char(v->type), 0 };

	return json_object_new_string(type);
}

static int print_change(void *ctx, const struct cairn_diff_change *c)
{
	struct diff_out *o = ctx;
	const struct cairn_node_view *now = c->new ? c->new : c->old;
	unsigned what = c->what & ~o->ignore;

	if (c->kind == CAIRN_DIFF_MODIFIED && !what)
		return 0; /* only ignored attributes: what is below still counts */
	o->count++;
	if (o->json) {
		json_object *e = json_object_new_object(), *list = json_object_new_array();

		if (!e || !list) {
			json_object_put(e);
			json_object_put(list);
			return -ENOMEM;
		}
		cli_json_add_bytes(e, "path", c->path, c->path_len);
		json_object_object_add(e, "change", json_object_new_string(change_name(c->kind)));
		for (unsigned i = 0; i < CAIRN_DIFF_WHAT_COUNT; i++)
			if (what & (1u << i))
				json_object_array_add(list, json_object_new_string(
								    cairn_diff_what_name(1u << i)));
		json_object_object_add(e, "what", list);
		json_object_object_add(e, "type", type_json(now));
		if (what & CAIRN_DIFF_TYPE)
			json_object_object_add(e, "old_type", type_json(c->old));
		return json_object_array_add(o->arr, e) ? -ENOMEM : 0;
	}
	putchar(c->kind == CAIRN_DIFF_ADDED ? 'A' : c->kind == CAIRN_DIFF_REMOVED ? 'D' : 'M');
	putchar(' ');
	cli_print_escaped(stdout, c->path, c->path_len);
	if (what) {
		const char *sep = " (";

		for (unsigned i = 0; i < CAIRN_DIFF_WHAT_COUNT; i++) {
			if (what & (1u << i)) {
				printf("%s%s", sep, cairn_diff_what_name(1u << i));
				sep = ", ";
			}
		}
		putchar(')');
	}
	putchar('\n');
	return ferror(stdout) ? -EIO : 0;
}

/* "mtime,owner" -> bits; -EINVAL (with a message) on an unknown name. */
static int parse_what(const char *list, unsigned *bits)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ",");
		unsigned i;

		for (i = 0; i < CAIRN_DIFF_WHAT_COUNT; i++) {
			const char *name = cairn_diff_what_name(1u << i);

			if (strlen(name) == len && strncmp(name, p, len) == 0)
				break;
		}
		if (i == CAIRN_DIFF_WHAT_COUNT)
			return -EINVAL;
		*bits |= 1u << i;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* Resolves an IMAGE argument to its flattened root. Prints the error. */
static int image_root(struct cairn_txn *t, const char *arg, struct cairn_id *root)
{
	struct cairn_image img;
	struct cairn_id id;
	int ret = cairn_image_resolve(t, arg, &id);

	if (!ret)
		ret = cairn_image_get(t, &id, &img);
	if (ret)
		return cli_fail(ret, "cannot diff '%s'", arg);
	*root = img.root;
	return 0;
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "expand", no_argument, NULL, 'e' },
		{ "exit-code", no_argument, NULL, 'x' },
		{ "stats", no_argument, NULL, 's' },
		{ "ignore", required_argument, NULL, 'i' },
		{ 0 },
	};
	struct diff_out o = { 0 };
	struct cairn_diff_stats st;
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_id a, b;
	struct timespec t0, t1;
	unsigned flags = 0;
	bool exit_code = false, stats = false;
	int opt, ret, err;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			o.json = true;
			break;
		case 'e':
			flags |= CAIRN_DIFF_EXPAND;
			break;
		case 'x':
			exit_code = true;
			break;
		case 's':
			stats = true;
			break;
		case 'i':
			if (parse_what(optarg, &o.ignore))
				return cli_usage("diff", "--ignore takes names from: type, content, "
							 "mode, owner, mtime, xattrs, target, device, "
							 "links, opaque");
			break;
		default:
			return cli_usage("diff", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage("diff", "diff takes two images");
	err = exit_code ? 2 : 1; /* like diff(1): 1 means "they differ" there */
	if (cli_open(cli, false, &s))
		return err;
	ret = cairn_txn_begin(s, false, &t);
	if (ret) {
		cairn_store_close(s);
		cli_fail(ret, "cannot read the store");
		return err;
	}
	ret = err;
	if (image_root(t, argv[optind], &a) || image_root(t, argv[optind + 1], &b))
		goto out;
	if (o.json && !(o.arr = json_object_new_array())) {
		cli_fail(-ENOMEM, "cannot diff");
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = cairn_diff_trees(t, &a, &b, flags, print_change, &o, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ret) {
		cli_fail(ret, "cannot diff '%s' and '%s'", argv[optind], argv[optind + 1]);
		ret = err;
		goto out;
	}
	if (o.json)
		puts(json_object_to_json_string_ext(o.arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	if (fflush(stdout) || ferror(stdout)) {
		cli_fail(-EIO, "cannot write to stdout");
		ret = err;
		goto out;
	}
	if (stats)
		fprintf(stderr,
			"cairn: diff read %llu nodes, visited %llu entries, %llu changes in %lld us\n",
			(unsigned long long)st.nodes_read, (unsigned long long)st.entries_visited,
			(unsigned long long)st.changes,
			(long long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	ret = exit_code && o.count ? 1 : 0;
out:
	json_object_put(o.arr);
	cairn_txn_abort(t);
	cairn_store_close(s);
	return ret;
}
