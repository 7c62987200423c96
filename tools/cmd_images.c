/* SPDX-License-Identifier: MIT */
/*
 * cmd_images.c - cairn images, tag, rmi.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"

struct image_row {
	struct cairn_id id;
	int64_t created_ns;
	uint64_t logical_size, nodes;
	char **tags;
	size_t ntags;
	uint8_t *layers; /* nlayers x 16 bytes, bottom first */
	uint32_t nlayers;
};

static int row_cmp(const void *a, const void *b)
{
	const struct image_row *x = a, *y = b;

	if (x->created_ns != y->created_ns)
		return x->created_ns > y->created_ns ? -1 : 1;
	return memcmp(x->id.b, y->id.b, CAIRN_ID_LEN);
}

static void rows_free(struct image_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < rows[i].ntags; j++)
			free(rows[i].tags[j]);
		free(rows[i].tags);
		free(rows[i].layers);
	}
	free(rows);
}

struct rows {
	struct image_row *v;
	size_t n, cap;
};

static int add_image(const struct cairn_image *img, void *arg)
{
	struct rows *r = arg;
	struct image_row *row;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		struct image_row *p = realloc(r->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->v = p;
		r->cap = cap;
	}
	row = &r->v[r->n];
	memset(row, 0, sizeof(*row));
	row->id = img->id;
	row->created_ns = img->created_ns;
	row->logical_size = img->logical_size;
	row->nodes = img->nodes;
	row->layers = malloc((size_t)img->nlayers * CAIRN_ID_LEN);
	if (!row->layers)
		return -ENOMEM;
	memcpy(row->layers, img->layers, (size_t)img->nlayers * CAIRN_ID_LEN);
	row->nlayers = img->nlayers;
	r->n++;
	return 0;
}

static int add_tag(const char *name, size_t len, const struct cairn_id *image, void *arg)
{
	struct rows *r = arg;

	for (size_t i = 0; i < r->n; i++) {
		struct image_row *row = &r->v[i];
		char **p;

		if (!cairn_id_eq(&row->id, image))
			continue;
		p = realloc(row->tags, (row->ntags + 1) * sizeof(*p));
		if (!p)
			return -ENOMEM;
		row->tags = p;
		p[row->ntags] = strndup(name, len);
		if (!p[row->ntags])
			return -ENOMEM;
		row->ntags++;
	}
	return 0;
}

/* Every image with its tags, newest first. */
static int load_rows(struct cairn_txn *t, struct image_row **out, size_t *count)
{
	struct rows r = { 0 };
	int ret = cairn_image_each(t, add_image, &r);

	if (!ret)
		ret = cairn_tag_each(t, add_tag, &r);
	if (ret) {
		rows_free(r.v, r.n);
		return ret;
	}
	if (r.n)
		qsort(r.v, r.n, sizeof(*r.v), row_cmp);
	*out = r.v;
	*count = r.n;
	return 0;
}

int cmd_images(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cairn_store *s;
	struct cairn_txn *t;
	struct image_row *rows = NULL;
	size_t n = 0;
	bool json = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("images", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc)
		return cli_usage("images", "images takes no arguments");
	if (cli_open(cli, false, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		ret = load_rows(t, &rows, &n);
		cairn_txn_abort(t);
	}
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot list images");
	}
	if (json) {
		json_object *arr = json_object_new_array();

		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object(), *tags = json_object_new_array();
			char hex[CAIRN_ID_HEX_LEN + 1], tbuf[64];

			cairn_id_hex(&rows[i].id, hex);
			for (size_t j = 0; j < rows[i].ntags; j++)
				json_object_array_add(tags, json_object_new_string(rows[i].tags[j]));
			json_object_object_add(o, "id", json_object_new_string(hex));
			json_object_object_add(o, "tags", tags);
			json_object_object_add(o, "created", json_object_new_string(cli_time(
					tbuf, sizeof(tbuf), rows[i].created_ns)));
			json_object_object_add(o, "created_ns",
					       json_object_new_int64(rows[i].created_ns));
			json_object_object_add(o, "logical_size",
					       json_object_new_int64((int64_t)rows[i].logical_size));
			json_object_object_add(o, "nodes", json_object_new_int64((int64_t)rows[i].nodes));
			{
				json_object *layers = json_object_new_array();

				for (uint32_t j = 0; j < rows[i].nlayers; j++) {
					struct cairn_id l;

					memcpy(l.b, rows[i].layers + (size_t)j * CAIRN_ID_LEN,
					       CAIRN_ID_LEN);
					cairn_id_hex(&l, hex);
					json_object_array_add(layers, json_object_new_string(hex));
				}
				json_object_object_add(o, "layers", layers);
			}
			json_object_array_add(arr, o);
		}
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	} else {
		printf("%-14s %-21s %10s %9s  %s\n", "ID", "CREATED", "SIZE", "ENTRIES", "TAGS");
		for (size_t i = 0; i < n; i++) {
			char hex[CAIRN_ID_HEX_LEN + 1], tbuf[64], sbuf[32];

			cairn_id_hex(&rows[i].id, hex);
			hex[12] = '\0';
			printf("%-14s %-21s %10s %9llu  ", hex,
			       cli_time(tbuf, sizeof(tbuf), rows[i].created_ns),
			       cli_bytes(sbuf, sizeof(sbuf), rows[i].logical_size),
			       (unsigned long long)rows[i].nodes);
			for (size_t j = 0; j < rows[i].ntags; j++)
				printf("%s%s", j ? "," : "", rows[i].tags[j]);
			if (!rows[i].ntags)
				printf("<none>");
			putchar('\n');
		}
	}
	rows_free(rows, n);
	cairn_store_close(s);
	return fflush(stdout) == 0 ? 0 : 1;
}

int cmd_tag(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_id id;
	int ret;

	if (argc != 3)
		return cli_usage("tag", "tag takes an image and a name");
	if (cli_check_tag("tag", argv[2]))
		return 2;
	if (cli_open(cli, true, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		ret = cli_resolve(t, argv[1], &id, NULL);
		cairn_txn_abort(t);
	}
	if (!ret)
		ret = cairn_tag_set(s, argv[2], &id);
	cairn_store_close(s);
	return ret ? cli_fail(ret, "cannot tag '%s'", argv[1]) : 0;
}

/* A tag: only the name goes. Anything else names an image, which goes with its tags. */
static int rmi_one(struct cairn_store *s, const char *name)
{
	struct cairn_txn *t;
	struct cairn_id id;
	bool tag;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	tag = cairn_tag_get(t, name, &id) == 0;
	cairn_err_clear();
	if (!tag)
		ret = cairn_image_resolve(t, name, &id);
	cairn_txn_abort(t);
	if (ret)
		return ret;
	return tag ? cairn_tag_remove(s, name) : cairn_image_remove(s, &id);
}

int cmd_rmi(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	int status = 0;

	if (argc < 2)
		return cli_usage("rmi", "rmi takes at least one image");
	if (cli_open(cli, true, &s))
		return 1;
	for (int i = 1; i < argc; i++) {
		int ret = rmi_one(s, argv[i]);

		if (ret)
			status = cli_fail(ret, "cannot remove '%s'", argv[i]);
	}
	cairn_store_close(s);
	return status;
}
