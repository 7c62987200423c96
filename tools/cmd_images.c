/* SPDX-License-Identifier: MIT */
/*
 * cmd_images.c - cairn images, tag, rmi.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"
#include "platform.h"

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

/* Every image with its tags, newest first. */
static int load_rows(struct cairn_txn *t, struct image_row **out, size_t *count)
{
	struct cairn_cursor *c = NULL;
	struct image_row *rows = NULL;
	size_t n = 0, cap = 0;
	const void *k, *v;
	size_t kl, vl;
	int ret;

	ret = cairn_cursor_open(t, CAIRN_DBI_IMAGES, &c);
	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		struct cairn_image img;

		if (kl != CAIRN_ID_LEN || cairn_image_parse(v, vl, &img))
			continue; /* fsck reports it */
		if (n == cap) {
			struct image_row *p = realloc(rows, (cap = cap ? 2 * cap : 16) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			rows = p;
		}
		memset(&rows[n], 0, sizeof(rows[n]));
		memcpy(rows[n].id.b, k, CAIRN_ID_LEN);
		rows[n].created_ns = img.created_ns;
		rows[n].logical_size = img.logical_size;
		rows[n].nodes = img.nodes;
		rows[n].layers = malloc((size_t)img.nlayers * CAIRN_ID_LEN);
		if (!rows[n].layers) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(rows[n].layers, img.layers, (size_t)img.nlayers * CAIRN_ID_LEN);
		rows[n].nlayers = img.nlayers;
		n++;
	}
	if (ret != -ENOENT)
		goto out;
	cairn_cursor_close(c);
	c = NULL;
	ret = cairn_cursor_open(t, CAIRN_DBI_TAGS, &c);
	if (ret)
		goto out;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		for (size_t i = 0; i < n && vl == CAIRN_ID_LEN; i++) {
			char **p;

			if (memcmp(rows[i].id.b, v, CAIRN_ID_LEN))
				continue;
			p = realloc(rows[i].tags, (rows[i].ntags + 1) * sizeof(*p));
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			rows[i].tags = p;
			p[rows[i].ntags] = strndup(k, kl);
			if (!p[rows[i].ntags]) {
				ret = -ENOMEM;
				goto out;
			}
			rows[i].ntags++;
		}
	}
	if (ret != -ENOENT)
		goto out;
	ret = 0;
	qsort(rows, n, sizeof(*rows), row_cmp);
	*out = rows;
	*count = n;
	rows = NULL;
	n = 0;
out:
	cairn_cursor_close(c);
	rows_free(rows, n);
	return ret;
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
	ret = cairn_txn_begin(s, true, &t);
	if (ret)
		goto fail;
	ret = cli_resolve(t, argv[1], &id, NULL);
	if (!ret)
		ret = cairn_put(t, CAIRN_DBI_TAGS, argv[2], strlen(argv[2]), id.b, CAIRN_ID_LEN, 0,
				NULL, NULL);
	if (ret) {
		cairn_txn_abort(t);
		goto fail;
	}
	ret = cairn_txn_commit(t);
	if (ret)
		goto fail;
	cairn_store_close(s);
	return 0;
fail:
	cairn_store_close(s);
	return cli_fail(ret, "cannot tag '%s'", argv[1]);
}

/* Deletes every tag naming id. */
static int untag_all(struct cairn_txn *t, const struct cairn_id *id)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret = cairn_cursor_open(t, CAIRN_DBI_TAGS, &c);

	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;) {
		if (vl == CAIRN_ID_LEN && memcmp(v, id->b, CAIRN_ID_LEN) == 0) {
			ret = cairn_cursor_del(c);
			if (ret)
				break;
			/* start over: tags are few, and this needs no cursor subtleties */
			ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl);
			continue;
		}
		ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl);
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

int cmd_rmi(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	struct cairn_txn *t;
	int ret = 0, status = 0;

	if (argc < 2)
		return cli_usage("rmi", "rmi takes at least one image");
	if (cli_open(cli, true, &s))
		return 1;
	for (int i = 1; i < argc; i++) {
		const void *v;
		size_t vl;
		struct cairn_id id;

		ret = cairn_txn_begin(s, true, &t);
		if (ret)
			break;
		if (strlen(argv[i]) <= 128 && *argv[i] &&
		    cairn_get(t, CAIRN_DBI_TAGS, argv[i], strlen(argv[i]), &v, &vl) == 0) {
			/* a tag: only the name goes */
			ret = cairn_del(t, CAIRN_DBI_TAGS, argv[i], strlen(argv[i]));
		} else {
			char who[160];

			ret = cairn_image_resolve(t, argv[i], &id);
			if (!ret) {
				ret = cairn_platform_uses(t, &id, who, sizeof(who));
				if (ret > 0)
					ret = cairn_err(-EBUSY, "platform generation %s uses it "
								"(gc --keep prunes history)", who);
			}
			if (!ret)
				ret = untag_all(t, &id);
			if (!ret)
				ret = cairn_del(t, CAIRN_DBI_IMAGES, id.b, CAIRN_ID_LEN);
		}
		if (ret) {
			cairn_txn_abort(t);
			status = cli_fail(ret, "cannot remove '%s'", argv[i]);
			continue;
		}
		ret = cairn_txn_commit(t);
		if (ret)
			status = cli_fail(ret, "cannot remove '%s'", argv[i]);
	}
	cairn_store_close(s);
	return status;
}
