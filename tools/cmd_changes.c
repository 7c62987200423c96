/* SPDX-License-Identifier: MIT */
/*
 * cmd_changes.c - cairn changes: what a container changed in its upper
 * directory, against the image the upper was made on, like `docker diff`:
 *   A /path   added (not in the image)
 *   C /path   changed (in the image, and written, chmod'ed... or a directory
 *             something below changed in)
 *   D /path   deleted (a whiteout, or hidden by a directory made opaque)
 * A renamed directory shows as D at its old path and A at its new one.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hidden.h"
#include "image.h"
#include "node.h"
#include "read.h"
#include "upper.h"

struct changes {
	struct cairn_txn *t;
	json_object *arr; /* --json, or NULL */
	struct cairn_buf path;
	unsigned long n;
	int err;
};

static void emit(struct changes *c, char kind)
{
	const char *p = c->path.len ? (const char *)c->path.data : "/";

	c->n++;
	if (c->arr) {
		json_object *o = json_object_new_object();
		char k[2] = { kind, 0 };

		cli_json_add_bytes(o, "path", p, strlen(p));
		json_object_object_add(o, "change", json_object_new_string(k));
		json_object_array_add(c->arr, o);
	} else {
		printf("%c ", kind);
		cli_print_escaped(stdout, p, strlen(p));
		putchar('\n');
	}
}

static int push(struct changes *c, const char *name, size_t len, size_t *old)
{
	*old = c->path.len;
	if (cairn_buf_append(&c->path, "/", 1) || cairn_buf_append(&c->path, name, len) ||
	    cairn_buf_append(&c->path, "", 1))
		return -ENOMEM;
	c->path.len--;
	return 0;
}

static void pop(struct changes *c, size_t old)
{
	c->path.len = old;
	c->path.data[old] = '\0';
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the upper directory fd changes in the image directory base (or none). */
static int walk(struct changes *c, int fd, const struct cairn_node_view *base, bool all_new,
		unsigned depth)
{
	char **names = NULL;
	size_t n = 0, cap = 0, old;
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	int ret = 0;

	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return -errno;
	}
	if (depth > CAIRN_DEPTH_MAX)
		ret = cairn_err_too_deep(c->path.len ? (const char *)c->path.data : "/");
	for (struct dirent *e; !ret && (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			names = p;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			ret = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; !ret && i < n; i++) {
		struct cairn_dirent be;
		struct cairn_node_view sub;
		struct stat st;
		bool in_base = !all_new && base &&
			       cairn_dir_lookup(base, names[i], strlen(names[i]), &be, NULL) == 0;

		if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			break;
		}
		ret = push(c, names[i], strlen(names[i]), &old);
		if (ret)
			break;
		if (cfs_is_whiteout(&st)) {
			if (in_base)
				emit(c, 'D');
		} else if (S_ISDIR(st.st_mode)) {
			int sfd = openat(fd, names[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			struct cfs_marks mk;
			bool redirect, opaque, base_dir, none;

			if (sfd < 0 || (ret = cfs_upper_marks_read(sfd, &mk, &none)) < 0) {
				ret = sfd < 0 ? -errno : ret;
				if (sfd >= 0)
					close(sfd);
				pop(c, old);
				break;
			}
			redirect = mk.has_redirect;
			opaque = mk.opaque;
			base_dir = in_base && be.type == CAIRN_NODE_DIR && !redirect &&
				   cairn_node_get(c->t, &be.id, 0, &sub) == 0;
			if (base_dir && !opaque) {
				emit(c, 'C');
				ret = walk(c, sfd, &sub, false, depth + 1);
			} else {
				if (base_dir && opaque) {
					/* the image's contents are gone: each of them deleted */
					emit(c, 'C');
					for (uint32_t k = 0; k < sub.nentries; k++) {
						struct cairn_dirent de;
						struct stat x;
						char nm[CAIRN_NAME_MAX + 1];
						size_t o2;

						if (cairn_dir_entry(&sub, k, &de))
							continue;
						memcpy(nm, de.name, de.name_len);
						nm[de.name_len] = '\0';
						if (fstatat(sfd, nm, &x, AT_SYMLINK_NOFOLLOW) == 0)
							continue; /* listed below */
						if (push(c, de.name, de.name_len, &o2) == 0) {
							emit(c, 'D');
							pop(c, o2);
						}
					}
				} else {
					emit(c, in_base ? 'C' : 'A');
				}
				ret = walk(c, sfd, NULL, true, depth + 1);
			}
			close(sfd);
		} else {
			emit(c, in_base ? 'C' : 'A');
		}
		pop(c, old);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

struct hidden_out {
	json_object *arr; /* --json, or NULL */
	unsigned long n;
};

static int print_hidden(void *ctx, const struct hidden_entry *h)
{
	struct hidden_out *o = ctx;

	o->n++;
	if (o->arr) {
		json_object *e = json_object_new_object();

		cli_json_add_bytes(e, "path", h->path, h->path_len);
		json_object_object_add(e, "upper", json_object_new_string(h->kind));
		json_object_object_add(e, "image", json_object_new_string(h->change));
		json_object_array_add(o->arr, e);
	} else {
		printf("%s ", h->kind);
		cli_print_escaped(stdout, h->path, h->path_len);
		putchar('\n');
	}
	return 0;
}

/* --against IMAGE: the upper's entries that hide what differs from IMAGE. */
static int list_hidden(struct cairn_txn *t, struct cfs_upper *u, const char *against, bool json)
{
	struct hidden_out o = { 0 };
	struct cairn_id id;
	int ret = cli_resolve(t, against, &id, NULL);

	if (json)
		o.arr = json_object_new_array();
	if (!ret)
		ret = hidden_entries(t, u->tree_fd, &id, &u->image, print_hidden, &o);
	if (!ret && json)
		puts(json_object_to_json_string_ext(o.arr, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o.arr);
	return ret;
}

int cmd_changes(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "against", required_argument, NULL, 'a' },
		{ 0 },
	};
	const char *against = NULL;
	struct changes c = { 0 };
	struct cfs_upper *u = NULL;
	struct cairn_store *s = NULL;
	struct cairn_image img;
	struct cairn_node_view root;
	bool json = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else if (opt == 'a')
			against = optarg;
		else
			return cli_usage("changes", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind != argc - 1)
		return cli_usage("changes", "changes takes one upper directory");
	/* read while mounted too: a listing, not a snapshot */
	ret = cfs_upper_open_read(argv[optind], false, &u);
	if (ret)
		return cli_fail(ret, "cannot list changes of '%s'", argv[optind]);
	if (cli_open(cli, false, &s)) {
		cfs_upper_close(u);
		return 1;
	}
	ret = cairn_txn_begin(s, false, &c.t);
	if (!ret)
		ret = cairn_image_get(c.t, &u->image, &img);
	if (!ret)
		ret = cairn_node_get(c.t, &img.root, 0, &root);
	if (ret == -ENOENT) {
		char hex[CAIRN_ID_HEX_LEN + 1];

		cairn_id_hex(&u->image, hex);
		ret = cairn_err(ret, "the upper's image %.12s is not in the store", hex);
	}
	if (!ret && against) {
		ret = list_hidden(c.t, u, against, json);
	} else {
		if (json)
			c.arr = json_object_new_array();
		if (!ret)
			ret = walk(&c, u->tree_fd, &root, false, 0);
		if (!ret && json)
			puts(json_object_to_json_string_ext(c.arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(c.arr);
	}
	if (c.t)
		cairn_txn_abort(c.t);
	cairn_buf_release(&c.path);
	cairn_store_close(s);
	cfs_upper_close(u);
	if (ret)
		return cli_fail(ret, "cannot list changes of '%s'", argv[optind]);
	return fflush(stdout) == 0 ? 0 : 1;
}
