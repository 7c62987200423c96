/* SPDX-License-Identifier: MIT */
/*
 * cmd_inspect.c - cairn ls, cat, stat: reading an image without mounting it.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cli.h"
#include "read.h"

static void mode_string(const struct cairn_node_view *v, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";
	uint32_t m = v->mode;

	out[0] = cairn_type_char(v->type) == '-' ? '-' : cairn_type_char(v->type);
	for (int i = 0; i < 9; i++)
		out[1 + i] = (m & (0400u >> i)) ? rwx[i] : '-';
	if (m & S_ISUID)
		out[3] = (m & 0100) ? 's' : 'S';
	if (m & S_ISGID)
		out[6] = (m & 0010) ? 's' : 'S';
	if (m & S_ISVTX)
		out[9] = (m & 0001) ? 't' : 'T';
	out[10] = '\0';
}

/* One entry as JSON: the fields stat and ls --json share. */
static json_object *node_json(const char *path, size_t plen, const struct cairn_id *id,
			      const struct cairn_node_view *v)
{
	json_object *o = json_object_new_object();
	char hex[CAIRN_ID_HEX_LEN + 1], type[2] = { cairn_type_char(v->type), 0 };
	struct cairn_xattr x;
	json_object *xa;
	size_t off = 0;
	bool raw = false;

	cairn_id_hex(id, hex);
	cli_json_add_bytes(o, "path", path, plen);
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "mode", json_object_new_int((int)v->mode));
	json_object_object_add(o, "uid", json_object_new_int64(v->uid));
	json_object_object_add(o, "gid", json_object_new_int64(v->gid));
	json_object_object_add(o, "mtime_ns",
			       json_object_new_int64(v->mtime_sec * 1000000000 + v->mtime_nsec));
	json_object_object_add(o, "nlink", json_object_new_int64(v->nlink ? v->nlink : 1));
	json_object_object_add(o, "node", json_object_new_string(hex));
	if (v->type == CAIRN_NODE_REG) {
		cairn_id_hex(&v->content, hex);
		json_object_object_add(o, "size", json_object_new_int64((int64_t)v->size));
		json_object_object_add(o, "content", json_object_new_string(hex));
	}
	if (v->type == CAIRN_NODE_LNK) {
		json_object_object_add(o, "size", json_object_new_int64((int64_t)v->target_len));
		cli_json_add_bytes(o, "target", v->target, v->target_len);
	}
	if (v->type == CAIRN_NODE_CHR || v->type == CAIRN_NODE_BLK) {
		json_object_object_add(o, "major", json_object_new_int64(v->major));
		json_object_object_add(o, "minor", json_object_new_int64(v->minor));
	}
	xa = json_object_new_array();
	while (cairn_xattr_next(v, &off, &x) == 0) {
		json_object_array_add(xa, cli_json_text(x.name, x.name_len));
		raw |= !cli_utf8_valid(x.name, x.name_len);
	}
	json_object_object_add(o, "xattrs", xa);
	if (raw) { /* the exact names, in the same order */
		xa = json_object_new_array();
		for (off = 0; cairn_xattr_next(v, &off, &x) == 0;)
			json_object_array_add(xa, cli_json_base64(x.name, x.name_len));
		json_object_object_add(o, "xattrs_base64", xa);
	}
	return o;
}

/* st_size as stat(2) gives it: a file's length, a symlink's target's length. */
static uint64_t node_size(const struct cairn_node_view *v)
{
	return v->type == CAIRN_NODE_REG ? v->size : v->type == CAIRN_NODE_LNK ? v->target_len : 0;
}

struct ls_opts {
	bool longfmt, recursive, json;
	json_object *arr;
};

static void print_long(const struct cairn_node_view *v)
{
	char mode[11], tbuf[64];

	mode_string(v, mode);
	printf("%s %2u %5u %5u ", mode, v->nlink ? v->nlink : 1, v->uid, v->gid);
	if (v->type == CAIRN_NODE_CHR || v->type == CAIRN_NODE_BLK)
		printf("%5u,%5u ", v->major, v->minor);
	else
		printf("%11llu ", (unsigned long long)node_size(v));
	printf("%s ", cli_time(tbuf, sizeof(tbuf), v->mtime_sec * 1000000000ll + v->mtime_nsec));
}

static int ls_entry(struct cairn_txn *t, struct ls_opts *o, struct cairn_buf *path,
		    const struct cairn_id *id, const struct cairn_node_view *v)
{
	if (o->json) {
		json_object_array_add(o->arr, node_json((const char *)path->data, path->len, id, v));
		return 0;
	}
	if (o->longfmt)
		print_long(v);
	cli_print_escaped(stdout, (const char *)path->data, path->len);
	if (o->longfmt && v->type == CAIRN_NODE_LNK) {
		fputs(" -> ", stdout);
		cli_print_escaped(stdout, v->target, v->target_len);
	}
	putchar('\n');
	return 0;
}

static int ls_dir(struct cairn_txn *t, struct ls_opts *o, struct cairn_buf *path,
		  const struct cairn_node_view *dir, unsigned depth)
{
	if (depth > CAIRN_DEPTH_MAX) {
		if (cairn_buf_append(path, "", 1))
			return -ENOMEM;
		return cairn_err_too_deep((const char *)path->data);
	}
	for (uint32_t i = 0; i < dir->nentries; i++) {
		struct cairn_node_view v;
		struct cairn_dirent e;
		size_t old = path->len;
		int ret;

		ret = cairn_dir_entry(dir, i, &e);
		if (ret)
			return cairn_err(ret, "a directory is damaged");
		if (path->len && (ret = cairn_buf_append(path, "/", 1)))
			return ret;
		if ((ret = cairn_buf_append(path, e.name, e.name_len)))
			return ret;
		ret = cairn_node_get(t, &e.id, 0, &v);
		if (ret)
			return ret;
		ret = ls_entry(t, o, path, &e.id, &v);
		if (!ret && o->recursive && v.type == CAIRN_NODE_DIR)
			ret = ls_dir(t, o, path, &v, depth + 1);
		if (ret)
			return ret;
		path->len = old;
	}
	return 0;
}

static int open_read(struct cli *cli, struct cairn_store **s, struct cairn_txn **t)
{
	int ret;

	if (cli_open(cli, false, s))
		return -1;
	ret = cairn_txn_begin(*s, false, t);
	if (ret) {
		cairn_store_close(*s);
		cli_fail(ret, "cannot read the store");
		return -1;
	}
	return 0;
}

/* Resolves IMAGE[:PATH] and walks to the node. Prints the error. */
static int walk_arg(struct cairn_txn *t, const char *arg, struct cairn_id *id,
		    struct cairn_node_view *v)
{
	struct cairn_image img;
	struct cairn_id image;
	const char *path;
	int ret;

	ret = cli_resolve(t, arg, &image, &path);
	if (!ret)
		ret = cairn_image_get(t, &image, &img);
	if (ret)
		return cli_fail(ret, "cannot read '%s'", arg);
	ret = cairn_path_walk(t, &img.root, path, id, v);
	if (ret == -ENOENT || ret == -ENOTDIR || ret == -ENAMETOOLONG) {
		cairn_err_clear();
		return cli_fail(ret, "cannot read '%s'", arg);
	}
	if (ret)
		return cli_fail(ret, "cannot read '%s'", arg);
	return 0;
}

int cmd_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "recursive", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct ls_opts o = { 0 };
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_node_view v;
	struct cairn_id id;
	struct cairn_buf path = { 0 };
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "lR", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			o.longfmt = true;
			break;
		case 'R':
			o.recursive = true;
			break;
		case 'j':
			o.json = true;
			break;
		default:
			return cli_usage("ls", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("ls", "ls takes one IMAGE[:PATH]");
	if (open_read(cli, &s, &t))
		return 1;
	if (walk_arg(t, argv[optind], &id, &v)) {
		ret = 1;
		goto out;
	}
	if (o.json)
		o.arr = json_object_new_array();
	if (v.type == CAIRN_NODE_DIR) {
		ret = ls_dir(t, &o, &path, &v, 1);
	} else {
		const char *p = strchr(argv[optind], ':');

		p = p ? p + 1 : "";
		ret = cairn_buf_append(&path, p, strlen(p));
		if (!ret)
			ret = ls_entry(t, &o, &path, &id, &v);
	}
	if (ret) {
		ret = cli_fail(ret, "cannot list '%s'", argv[optind]);
	} else if (o.json) {
		puts(json_object_to_json_string_ext(o.arr, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(o.arr);
	if (!ret && fflush(stdout))
		ret = 1;
out:
	cairn_buf_release(&path);
	cairn_txn_abort(t);
	cairn_store_close(s);
	return ret;
}

int cmd_cat(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_node_view v;
	struct cairn_content_view cv;
	struct cairn_reader r = { 0 };
	struct cairn_id id;
	cleanup_free uint8_t *buf = NULL;
	uint64_t off = 0;
	int ret = 0;

	if (argc != 2)
		return cli_usage("cat", "cat takes one IMAGE:PATH");
	if (open_read(cli, &s, &t))
		return 1;
	if (walk_arg(t, argv[1], &id, &v)) {
		ret = 1;
		goto out;
	}
	if (v.type != CAIRN_NODE_REG) {
		ret = cli_fail(0, "cannot read '%s': %s", argv[1],
			       v.type == CAIRN_NODE_DIR ? "is a directory" : "not a regular file");
		goto out;
	}
	buf = malloc(1u << 20);
	ret = buf ? cairn_file_content(t, &v, 0, &cv) : -ENOMEM;
	if (!ret)
		ret = cairn_reader_init(&r, t);
	while (!ret && off < v.size) {
		ssize_t n = cairn_reader_pread(&r, &cv, buf, 1u << 20, off);

		if (n <= 0) {
			ret = n < 0 ? (int)n : -EIO;
			break;
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			ret = -errno;
			break;
		}
		off += (uint64_t)n;
	}
	if (ret)
		ret = cli_fail(ret, "cannot read '%s'", argv[1]);
	else if (fflush(stdout))
		ret = cli_fail(-errno, "cannot write to stdout");
out:
	cairn_reader_release(&r);
	cairn_txn_abort(t);
	cairn_store_close(s);
	return ret;
}

int cmd_stat(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { 0 } };
	struct cairn_store *s;
	struct cairn_txn *t;
	struct cairn_node_view v;
	struct cairn_id id;
	const char *path;
	bool json = false;
	int opt, ret = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage("stat", "unknown option '%s'", argv[optind - 1]);
		json = true;
	}
	if (optind != argc - 1)
		return cli_usage("stat", "stat takes one IMAGE:PATH");
	if (open_read(cli, &s, &t))
		return 1;
	if (walk_arg(t, argv[optind], &id, &v)) {
		ret = 1;
		goto out;
	}
	path = strchr(argv[optind], ':');
	path = path ? path + 1 : "/";
	if (json) {
		json_object *o = node_json(path, strlen(path), &id, &v);

		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		char hex[CAIRN_ID_HEX_LEN + 1], mode[11], tbuf[64];
		struct cairn_xattr x;
		size_t off = 0;

		mode_string(&v, mode);
		cairn_id_hex(&id, hex);
		fputs("  path: ", stdout);
		cli_print_escaped(stdout, path, strlen(path));
		printf("\n  node: %s\n  mode: %s (%04o)\n   uid: %u\n   gid: %u\n", hex, mode,
		       v.mode, v.uid, v.gid);
		printf(" mtime: %s (%lld.%09u)\n",
		       cli_time(tbuf, sizeof(tbuf), v.mtime_sec * 1000000000ll + v.mtime_nsec),
		       (long long)v.mtime_sec, v.mtime_nsec);
		if (v.type != CAIRN_NODE_DIR)
			printf(" links: %u\n", v.nlink);
		if (v.type == CAIRN_NODE_DIR)
			printf("  size: %u entries\n", v.nentries);
		if (v.type == CAIRN_NODE_REG) {
			static const char *const kinds[] = { "empty", "one chunk", "extent list" };
			struct cairn_content_view cv;

			cairn_id_hex(&v.content, hex);
			printf("  size: %llu\n content: %s (%s", (unsigned long long)v.size, hex,
			       kinds[v.content_kind]);
			if (v.content_kind == CAIRN_CONTENT_LIST &&
			    cairn_file_content(t, &v, 0, &cv) == 0)
				printf(", %u extents", cv.count);
			printf(")\n");
		}
		if (v.type == CAIRN_NODE_LNK) {
			printf("  size: %zu\n", v.target_len);
			fputs("target: ", stdout);
			cli_print_escaped(stdout, v.target, v.target_len);
			putchar('\n');
		}
		if (v.type == CAIRN_NODE_CHR || v.type == CAIRN_NODE_BLK)
			printf("device: %u,%u\n", v.major, v.minor);
		while (cairn_xattr_next(&v, &off, &x) == 0) {
			fputs(" xattr: ", stdout);
			cli_print_escaped(stdout, x.name, x.name_len);
			printf(" (%zu bytes)\n", x.value_len);
		}
	}
	if (fflush(stdout))
		ret = 1;
out:
	cairn_txn_abort(t);
	cairn_store_close(s);
	return ret;
}
