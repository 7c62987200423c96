/* SPDX-License-Identifier: MIT */
/*
 * cmd_import.c - cairn import: a source becomes an image, published in one
 * synced commit or not at all.
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "import.h"

int cmd_import(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "message", required_argument, NULL, 'm' },
		{ "level", required_argument, NULL, 'l' },
		{ 0 },
	};
	const char *tag = NULL, *msg = NULL, *src;
	struct cairn_store *s = NULL;
	struct cairn_writer *w = NULL;
	struct import_result res = { 0 };
	struct cairn_publish pub = { 0 };
	struct cairn_id image;
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct stat st;
	int opt, ret, level = 0;
	bool have_level = false;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "t:m:", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			tag = optarg;
			break;
		case 'm':
			msg = optarg;
			break;
		case 'l': {
			char *end;

			level = (int)strtol(optarg, &end, 10);
			if (*end || level < 1 || level > 19)
				return cli_usage("import", "--level must be 1..19, not '%s'", optarg);
			have_level = true;
			break;
		}
		default:
			return cli_usage("import", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("import", "import takes one source");
	src = argv[optind];
	if (tag && cairn_tag_check(tag))
		return cli_usage("import", "'%s' is not a valid tag (letters, digits, '.', '_', "
					   "'-'; at most 128)", tag);
	if (stat(src, &st) < 0)
		return cli_fail(-errno, "cannot import '%s'", src);
	if (!S_ISDIR(st.st_mode))
		return cli_fail(0, "cannot import '%s': not a directory", src);

	if (cli_open(cli, true, &s))
		return 1;
	if (have_level)
		cairn_store_set_level(s, level);
	ret = cairn_writer_new(s, 0, &w);
	if (ret)
		goto fail;
	ret = import_dir(w, src, cairn_store_dir(s), cli->tty, &res);
	if (ret)
		goto fail;
	pub.source = CAIRN_LAYER_DIR;
	pub.layer_root = res.root;
	pub.root = res.root;
	pub.logical_size = res.logical_size;
	pub.nodes = res.entries;
	pub.msg = msg;
	pub.tag = tag;
	ret = cairn_writer_publish(w, &pub, &image);
	if (ret)
		goto fail;
	cairn_id_hex(&image, hex);
	printf("%s\n", hex);
	if (cli->tty) {
		const struct cairn_writer_stats *st2 = cairn_writer_stats(w);
		char a[32], b[32];

		fprintf(stderr, "%llu new chunks (%s raw, %s stored), %llu reused; %llu new nodes\n",
			(unsigned long long)st2->chunks_new,
			cli_bytes(a, sizeof(a), st2->chunk_bytes_new),
			cli_bytes(b, sizeof(b), st2->stored_bytes_new),
			(unsigned long long)st2->chunks_dup, (unsigned long long)st2->nodes_new);
	}
	cairn_writer_free(w);
	cairn_store_close(s);
	return fflush(stdout) == 0 ? 0 : 1;
fail:
	cli_fail(ret, "cannot import '%s'", src);
	cairn_writer_free(w);
	cairn_store_close(s);
	return 1;
}
