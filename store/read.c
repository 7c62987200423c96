/* SPDX-License-Identifier: MIT */
/*
 * read.c - path walks and file reads over the Merkle tree.
 */
#include "read.h"

#include "content.h"
#include "store-internal.h"

#include <xxhash.h>

#include "source.h"

static int damaged(int ret, const char *what, const struct cairn_id *id)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(id, hex);
	if (ret == -ENOENT)
		return cairn_err(-EUCLEAN, "%s %s is missing from the store", what, hex);
	if (ret == -EUCLEAN)
		return cairn_err(ret, "%s %s is damaged", what, hex);
	return ret;
}

int cairn_node_get(struct cairn_txn *t, const struct cairn_id *id, unsigned flags,
		   struct cairn_node_view *v)
{
	const void *val;
	size_t len;
	int ret = cairn_get(t, CAIRN_DBI_NODES, id->b, CAIRN_ID_LEN, &val, &len);

	if (ret)
		return damaged(ret, "node", id);
	ret = cairn_node_parse(val, len, flags, v);
	return ret ? damaged(ret, "node", id) : 0;
}

int cairn_path_walk(struct cairn_txn *t, const struct cairn_id *root, const char *path,
		    struct cairn_id *id, struct cairn_node_view *v)
{
	struct cairn_dirent e;
	int ret;

	*id = *root;
	ret = cairn_node_get(t, id, 0, v);
	if (ret)
		return ret;
	while (*path) {
		const char *end;

		while (*path == '/')
			path++;
		if (!*path)
			break;
		end = strchrnul(path, '/');
		if (v->type != CAIRN_NODE_DIR)
			return -ENOTDIR;
		if ((size_t)(end - path) > CAIRN_NAME_MAX)
			return -ENAMETOOLONG;
		ret = cairn_dir_lookup(v, path, (size_t)(end - path), &e, NULL);
		if (ret)
			return ret;
		*id = e.id;
		ret = cairn_node_get(t, id, 0, v);
		if (ret)
			return ret;
		path = end;
	}
	return 0;
}

int cairn_file_content(struct cairn_txn *t, const struct cairn_node_view *file, unsigned flags,
		       struct cairn_content_view *cv)
{
	const void *val;
	size_t len;
	int ret;

	switch (file->content_kind) {
	case CAIRN_CONTENT_EMPTY:
		memset(cv, 0, sizeof(*cv));
		return 0;
	case CAIRN_CONTENT_CHUNK:
		cairn_content_single(&file->content, file->size, cv);
		return 0;
	default:
		ret = cairn_get(t, CAIRN_DBI_CONTENTS, file->content.b, CAIRN_ID_LEN, &val, &len);
		if (ret)
			return damaged(ret, "content list", &file->content);
		ret = cairn_content_parse(val, len, flags, cv);
		if (!ret && cv->size != file->size)
			ret = -EUCLEAN;
		return ret ? damaged(ret, "content list", &file->content) : 0;
	}
}

int cairn_reader_init(struct cairn_reader *r, struct cairn_txn *t)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	r->buf = malloc(CAIRN_CHUNK_MAX_LIMIT);
	return r->buf ? 0 : -ENOMEM;
}

void cairn_reader_release(struct cairn_reader *r)
{
	cairn_zctx_release(&r->z);
	free(r->buf);
	r->buf = NULL;
}

long cairn_reader_chunk(struct cairn_reader *r, const struct cairn_id *id, const uint8_t **data)
{
	long n;

	if (r->have && cairn_id_eq(&r->cur, id)) {
		*data = r->buf;
		return r->cur_len;
	}
	r->have = false;
	n = cairn_chunks_read(r->t, &r->z, id, 0, r->buf, CAIRN_CHUNK_MAX_LIMIT);
	if (n == -ENOENT)
		return damaged(-ENOENT, "chunk", id) == -EUCLEAN ? -EIO : n;
	if (n < 0)
		return n;
	r->cur = *id;
	r->cur_len = (uint32_t)n;
	r->have = true;
	*data = r->buf;
	return n;
}

/* Hints the chunks after extent i of cv, a window at a time. */
static void read_ahead(struct cairn_reader *r, const struct cairn_content_view *cv, uint32_t i)
{
	struct cairn_id ids[CAIRN_READ_AHEAD];
	uint32_t end, n = 0;

	if (!cv->extents || cv->count < 2)
		return; /* one chunk: nothing ahead */
	if (r->ra_list != cv->extents || r->ra_next <= i || r->ra_next > i + CAIRN_READ_AHEAD) {
		r->ra_list = cv->extents; /* another file, or a seek */
		r->ra_next = i + 1;
	}
	if (r->ra_next > i + CAIRN_READ_AHEAD / 2)
		return; /* half a window is still ahead */
	end = i + 1 + CAIRN_READ_AHEAD < cv->count ? i + 1 + CAIRN_READ_AHEAD : cv->count;
	for (uint32_t j = r->ra_next; j < end; j++) {
		struct cairn_extent e;

		cairn_content_extent(cv, j, &e);
		if (!e.hole)
			ids[n++] = e.id;
	}
	r->ra_next = end;
	if (n)
		cairn_chunks_prefetch(r->t, ids, n);
}

ssize_t cairn_reader_pread(struct cairn_reader *r, const struct cairn_content_view *cv,
			   void *buf, size_t len, uint64_t off)
{
	uint8_t *out = buf;
	size_t done = 0;

	if (off >= cv->size || len == 0)
		return 0;
	if (len > cv->size - off)
		len = (size_t)(cv->size - off);
	for (uint32_t i = cairn_content_find(cv, off); done < len && i < cv->count; i++) {
		struct cairn_extent e;
		uint64_t pos = off + done;
		size_t n;

		cairn_content_extent(cv, i, &e);
		if (e.end <= pos)
			continue;
		n = (size_t)(e.end - pos < len - done ? e.end - pos : len - done);
		if (e.hole) {
			memset(out + done, 0, n);
		} else {
			const uint8_t *data;
			long cl;

			read_ahead(r, cv, i);
			cl = cairn_reader_chunk(r, &e.id, &data);

			if (cl < 0)
				return cl;
			if ((uint64_t)cl != e.end - e.start)
				return cairn_err(-EIO, "a chunk's length disagrees with its file's "
						       "extent list");
			memcpy(out + done, data + (pos - e.start), n);
		}
		done += n;
	}
	return (ssize_t)done;
}

/*
 * The content id a content list's bytes hash to, compared with id: how a
 * content list from an untrusted source (a remote store) is checked once its
 * chunks are local. (The one place outside the writer and fsck that hashes
 * a file's bytes; keep the three in step with format.h's definition.)
 */
int cairn_content_check(const struct cairn_id *id, const void *val, size_t len,
			struct cairn_content_view *cv)
{
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id got;

	cairn_id_hex(id, hex);
	cairn_content_list_id(val, len, &got);
	if (!cairn_id_eq(&got, id))
		return cairn_err(-EIO, "content %s does not match its id", hex);
	if (cairn_content_parse(val, len, CAIRN_PARSE_STRICT, cv))
		return cairn_err(-EIO, "content %s is not a well-formed extent list", hex);
	return 0;
}

int cairn_node_value(struct cairn_txn *t, const struct cairn_id *id, const void **val,
		     size_t *len)
{
	return cairn_get(t, CAIRN_DBI_NODES, id->b, CAIRN_ID_LEN, val, len);
}

int cairn_content_value(struct cairn_txn *t, const struct cairn_id *id, const void **val,
			size_t *len)
{
	return cairn_get(t, CAIRN_DBI_CONTENTS, id->b, CAIRN_ID_LEN, val, len);
}
