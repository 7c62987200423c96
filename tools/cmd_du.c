/* SPDX-License-Identifier: MIT */
/*
 * cmd_du.c - cairn du: logical and stored sizes, and how much of what an
 * image stores it shares with other images. The figures come from
 * cairn_usage_images() (store/walk.h); this file adds the store's own
 * totals and prints.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "walk.h"

/* Shown by 'cairn du --help'. */
extern const char cmd_du_help[];
const char cmd_du_help[] =
	"For one image: its logical size (regular file bytes, hard links once), the\n"
	"bytes it stores (the values of every node, content list and chunk it\n"
	"reaches, through its flattened tree and its layers, each counted once; a\n"
	"chunk counts its index record and its entry in a pack file),\n"
	"of those the unique bytes no other image reaches and the shared rest, its\n"
	"chunk count, and the dedup ratio (logical / stored).\n"
	"\n"
	"Without IMAGE: the same for every image as a table, the union over all\n"
	"images, the value bytes held in each database, the pages LMDB uses, the\n"
	"size of data.mdb and its disk usage, and the pack files' committed bytes\n"
	"and disk usage.\n"
	"\n"
	"An image pulled with --lazy has chunks that are not fetched yet: du counts\n"
	"them apart (their bytes on the remote), and says how much of the image's\n"
	"chunk bytes are local.\n"
	"\n"
	"--json fields: logical_bytes, stored_bytes, unique_bytes, shared_bytes,\n"
	"chunks, contents, nodes, dedup_ratio, remote_chunks, remote_bytes,\n"
	"local_share (local chunk bytes / all its chunk bytes, 0..1), store_used_bytes,\n"
	"store_file_bytes,\n"
	"store_disk_bytes, packs, pack_bytes, pack_disk_bytes; without IMAGE also \"images\" (one object per image with\n"
	"\"id\" and \"tags\") and \"databases\".\n";

struct tag {
	struct cairn_id image;
	char *name;
};

struct tags {
	struct tag *v;
	size_t n, cap;
};

static void tags_release(struct tags *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
}

static int tag_add(const char *name, size_t len, const struct cairn_id *image, void *arg)
{
	struct tags *t = arg;

	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct tag *n = realloc(t->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->v = n;
		t->cap = ncap;
	}
	t->v[t->n].image = *image;
	t->v[t->n].name = strndup(name, len);
	if (!t->v[t->n].name)
		return -ENOMEM;
	t->n++;
	return 0;
}

static int tags_load(struct cairn_txn *txn, struct tags *t)
{
	return cairn_tag_each(txn, tag_add, t);
}

struct store_figures {
	struct cairn_store *store;
	struct cairn_store_space space;
	uint64_t disk_bytes;      /* st_blocks * 512 of data.mdb */
	uint64_t packs;           /* pack files */
	uint64_t pack_bytes;      /* their committed bytes */
	uint64_t pack_disk_bytes; /* their st_blocks * 512 */
	struct cairn_table_usage dbs[CAIRN_TABLES_REPORTED];
};

static int store_figures(struct cairn_store *s, struct store_figures *f)
{
	cleanup_free char *path = NULL;
	struct stat st;
	int ret;

	ret = cairn_store_space(s, &f->space);
	if (ret)
		return ret;
	if (asprintf(&path, "%s/data.mdb", cairn_store_dir(s)) < 0) {
		path = NULL;
		return -ENOMEM;
	}
	f->disk_bytes = stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
	return 0;
}

static int pack_add(uint32_t pack, uint64_t bytes, void *arg)
{
	struct store_figures *f = arg;
	struct stat st;
	char path[4096];

	f->packs++;
	f->pack_bytes += bytes;
	cairn_store_pack_path(f->store, pack, path, sizeof(path));
	if (stat(path, &st) == 0)
		f->pack_disk_bytes += (uint64_t)st.st_blocks * 512;
	return 0;
}

/* Pack files: what the store says is committed, and their disk usage. */
static int pack_figures(struct cairn_txn *t, struct store_figures *f)
{
	f->store = cairn_txn_store(t);
	return cairn_store_pack_each(t, pack_add, f);
}

static int store_db_figures(struct cairn_txn *t, struct store_figures *f)
{
	return cairn_store_table_usage(t, f->dbs);
}

static double ratio(const struct cairn_usage *u)
{
	return u->stored_bytes ? (double)u->logical_bytes / (double)u->stored_bytes : 0.0;
}

/* Of the image's chunk bytes, the share that is local (1 unless pulled lazily). */
static double local_share(const struct cairn_usage *u)
{
	uint64_t all = u->chunk_bytes + u->remote_bytes;

	return all ? (double)u->chunk_bytes / (double)all : 1.0;
}

/* --- json --------------------------------------------------------------- */

static json_object *json_u64(uint64_t v)
{
	return json_object_new_int64(v > INT64_MAX ? INT64_MAX : (int64_t)v);
}

static json_object *json_ratio(double r)
{
	char s[32];

	snprintf(s, sizeof(s), "%.3f", r);
	return json_object_new_double_s(r, s);
}

static void json_figures(json_object *o, const struct cairn_usage *u)
{
	json_object_object_add(o, "logical_bytes", json_u64(u->logical_bytes));
	json_object_object_add(o, "stored_bytes", json_u64(u->stored_bytes));
	json_object_object_add(o, "unique_bytes", json_u64(u->unique_bytes));
	json_object_object_add(o, "shared_bytes", json_u64(u->stored_bytes - u->unique_bytes));
	json_object_object_add(o, "chunks", json_u64(u->chunks));
	json_object_object_add(o, "contents", json_u64(u->contents));
	json_object_object_add(o, "nodes", json_u64(u->nodes));
	json_object_object_add(o, "dedup_ratio", json_ratio(ratio(u)));
	json_object_object_add(o, "remote_chunks", json_u64(u->remote));
	json_object_object_add(o, "remote_bytes", json_u64(u->remote_bytes));
	json_object_object_add(o, "local_share", json_ratio(local_share(u)));
	if (u->missing)
		json_object_object_add(o, "missing", json_u64(u->missing));
}

static json_object *json_image(const struct cairn_usage *u, const struct tags *tags)
{
	json_object *o = json_object_new_object(), *ta = json_object_new_array();
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(&u->image, hex);
	json_object_object_add(o, "id", json_object_new_string(hex));
	for (size_t i = 0; i < tags->n; i++)
		if (cairn_id_eq(&tags->v[i].image, &u->image))
			json_object_array_add(ta, json_object_new_string(tags->v[i].name));
	json_object_object_add(o, "tags", ta);
	json_figures(o, u);
	return o;
}

static void json_store(json_object *o, const struct store_figures *f, bool dbs)
{
	json_object_object_add(o, "store_used_bytes", json_u64(f->space.used_bytes));
	json_object_object_add(o, "store_file_bytes", json_u64(f->space.file_bytes));
	json_object_object_add(o, "store_disk_bytes", json_u64(f->disk_bytes));
	json_object_object_add(o, "packs", json_u64(f->packs));
	json_object_object_add(o, "pack_bytes", json_u64(f->pack_bytes));
	json_object_object_add(o, "pack_disk_bytes", json_u64(f->pack_disk_bytes));
	if (dbs) {
		json_object *d = json_object_new_object();

		for (size_t i = 0; i < ARRAY_SIZE(f->dbs); i++) {
			json_object *e = json_object_new_object();

			json_object_object_add(e, "entries", json_u64(f->dbs[i].entries));
			json_object_object_add(e, "value_bytes", json_u64(f->dbs[i].bytes));
			json_object_object_add(d, f->dbs[i].name, e);
		}
		json_object_object_add(o, "databases", d);
	}
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* --- text --------------------------------------------------------------- */

static void print_tags(const struct cairn_id *id, const struct tags *tags, const char *none)
{
	bool any = false;

	for (size_t i = 0; i < tags->n; i++) {
		if (!cairn_id_eq(&tags->v[i].image, id))
			continue;
		if (any)
			putchar(',');
		fputs(tags->v[i].name, stdout);
		any = true;
	}
	if (!any)
		fputs(none, stdout);
}

static void print_one(const struct cairn_usage *u, const struct tags *tags,
		      const struct store_figures *f)
{
	char hex[CAIRN_ID_HEX_LEN + 1], b[32], c[32], d[32];

	cairn_id_hex(&u->image, hex);
	printf("image     %s (", hex);
	print_tags(&u->image, tags, "no tags");
	printf(")\n");
	printf("logical   %s (%llu bytes)\n", cli_bytes(b, sizeof(b), u->logical_bytes),
	       (unsigned long long)u->logical_bytes);
	printf("stored    %s (%llu bytes) in %llu chunks, %llu content lists, %llu nodes\n",
	       cli_bytes(b, sizeof(b), u->stored_bytes), (unsigned long long)u->stored_bytes,
	       (unsigned long long)u->chunks, (unsigned long long)u->contents,
	       (unsigned long long)u->nodes);
	printf("unique    %s (%llu bytes)\n", cli_bytes(b, sizeof(b), u->unique_bytes),
	       (unsigned long long)u->unique_bytes);
	printf("shared    %s (%llu bytes)\n",
	       cli_bytes(b, sizeof(b), u->stored_bytes - u->unique_bytes),
	       (unsigned long long)(u->stored_bytes - u->unique_bytes));
	printf("dedup     %.2fx\n", ratio(u));
	if (u->remote)
		printf("lazy      %llu chunks (%s on the remote) not fetched yet: %.0f%% of its chunk "
		       "bytes are local\n", (unsigned long long)u->remote,
		       cli_bytes(b, sizeof(b), u->remote_bytes), 100.0 * local_share(u));
	printf("store     LMDB uses %s of data.mdb (%s, %s on disk)\n",
	       cli_bytes(b, sizeof(b), f->space.used_bytes),
	       cli_bytes(c, sizeof(c), f->space.file_bytes),
	       cli_bytes(d, sizeof(d), f->disk_bytes));
	printf("packs     %llu files, %s committed, %s on disk\n", (unsigned long long)f->packs,
	       cli_bytes(b, sizeof(b), f->pack_bytes), cli_bytes(c, sizeof(c), f->pack_disk_bytes));
}

static void print_row(const char *id, const struct cairn_usage *u)
{
	char l[32], s[32], q[32], h[32];

	printf("%-14s %10s %10s %10s %10s %8llu %8.2fx  ", id,
	       cli_bytes(l, sizeof(l), u->logical_bytes), cli_bytes(s, sizeof(s), u->stored_bytes),
	       cli_bytes(q, sizeof(q), u->unique_bytes),
	       cli_bytes(h, sizeof(h), u->stored_bytes - u->unique_bytes),
	       (unsigned long long)u->chunks, ratio(u));
}

static void print_all(const struct cairn_usage *u, size_t n, const struct cairn_usage *total,
		      const struct tags *tags, const struct store_figures *f)
{
	char b[32], c[32], d[32];

	printf("%-14s %10s %10s %10s %10s %8s %9s  %s\n", "IMAGE", "LOGICAL", "STORED", "UNIQUE",
	       "SHARED", "CHUNKS", "DEDUP", "TAGS");
	for (size_t i = 0; i < n; i++) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(&u[i].image, hex);
		hex[12] = '\0';
		print_row(hex, &u[i]);
		print_tags(&u[i].image, tags, "-");
		putchar('\n');
	}
	print_row("all images", total);
	putchar('\n');
	for (size_t i = 0; i < n; i++) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		if (!u[i].remote)
			continue;
		cairn_id_hex(&u[i].image, hex);
		hex[12] = '\0';
		printf("%s: %llu chunks (%s on the remote) not fetched yet (lazy): %.0f%% local\n",
		       hex, (unsigned long long)u[i].remote,
		       cli_bytes(b, sizeof(b), u[i].remote_bytes), 100.0 * local_share(&u[i]));
	}
	printf("\n%-10s %12s %12s\n", "DATABASE", "ENTRIES", "VALUES");
	for (size_t i = 0; i < ARRAY_SIZE(f->dbs); i++)
		printf("%-10s %12llu %12s\n", f->dbs[i].name,
		       (unsigned long long)f->dbs[i].entries,
		       cli_bytes(b, sizeof(b), f->dbs[i].bytes));
	printf("\nLMDB uses %s of data.mdb (%s, %s on disk)\n",
	       cli_bytes(b, sizeof(b), f->space.used_bytes),
	       cli_bytes(c, sizeof(c), f->space.file_bytes),
	       cli_bytes(d, sizeof(d), f->disk_bytes));
	printf("%llu pack files hold %s of chunks (%s on disk)\n", (unsigned long long)f->packs,
	       cli_bytes(b, sizeof(b), f->pack_bytes), cli_bytes(c, sizeof(c), f->pack_disk_bytes));
}

/* --- the command -------------------------------------------------------- */

int cmd_du(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cairn_usage *u = NULL, total;
	struct store_figures f = { 0 };
	struct tags tags = { 0 };
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_id image;
	const char *arg = NULL;
	bool json = false;
	size_t n = 0;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("du", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind < argc - 1)
		return cli_usage("du", "du takes at most one IMAGE");
	if (optind == argc - 1)
		arg = argv[optind];
	if (cli_open(cli, false, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot read the store");
	}
	if (arg) {
		const char *path;

		ret = cli_resolve(t, arg, &image, &path);
		if (!ret && *path)
			ret = cairn_err(-EINVAL, "du takes an image, not a path inside one");
	}
	if (!ret)
		ret = tags_load(t, &tags);
	if (!ret)
		ret = cairn_usage_images(t, arg ? &image : NULL, &u, &n, &total);
	if (!ret)
		ret = store_figures(s, &f);
	if (!ret)
		ret = pack_figures(t, &f);
	if (!ret && !arg)
		ret = store_db_figures(t, &f);
	if (ret) {
		ret = arg ? cli_fail(ret, "cannot measure '%s'", arg)
			  : cli_fail(ret, "cannot measure store '%s'", cli->store_dir);
		goto out;
	}
	if (json && arg) {
		json_object *o = json_image(&u[0], &tags);

		json_store(o, &f, false);
		print_json(o);
	} else if (json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();

		json_figures(o, &total);
		json_store(o, &f, true);
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, json_image(&u[i], &tags));
		json_object_object_add(o, "images", arr);
		print_json(o);
	} else if (arg) {
		print_one(&u[0], &tags, &f);
	} else {
		print_all(u, n, &total, &tags, &f);
	}
	if ((arg ? u[0].missing : total.missing) && !json)
		fprintf(stderr, "cairn: warning: %llu objects are missing or damaged; "
				"run 'cairn fsck'\n",
			(unsigned long long)(arg ? u[0].missing : total.missing));
	if (fflush(stdout))
		ret = cli_fail(-errno, "cannot write to stdout");
out:
	free(u);
	tags_release(&tags);
	cairn_txn_abort(t);
	cairn_store_close(s);
	return ret;
}
