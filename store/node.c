/* SPDX-License-Identifier: MIT */
/*
 * node.c - canonical encodings and bounds-checked views of nodes and
 * content lists.
 */
#include "node.h"

#include <sys/stat.h>
#include <xxhash.h>

int cairn_name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

int cairn_link_key(const char *path, size_t len, struct cairn_id *out)
{
	static const char prefix[] = "cairn-link";
	XXH3_state_t *st = XXH3_createState();
	XXH128_canonical_t c;

	if (!st)
		return -ENOMEM;
	XXH3_128bits_reset(st);
	XXH3_128bits_update(st, prefix, sizeof(prefix) - 1);
	XXH3_128bits_update(st, path, len);
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
	XXH3_freeState(st);
	memcpy(out->b, c.digest, CAIRN_ID_LEN);
	return 0;
}

static bool valid_entry_name(const char *n, size_t len)
{
	if (len == 0 || len > CAIRN_NAME_MAX)
		return false;
	if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.'))
		return false;
	return !memchr(n, '/', len) && !memchr(n, '\0', len);
}

static bool valid_type(uint8_t t)
{
	return t >= CAIRN_NODE_REG && t <= CAIRN_NODE_WHITEOUT;
}

int cairn_node_encode(const struct cairn_node_build *n, struct cairn_buf *out)
{
	struct cairn_node_disk h = { .version = CAIRN_FORMAT_VERSION };
	uint8_t tmp[8];
	int ret;

	if (!valid_type(n->type) || (n->mode & ~07777u) || n->mtime_nsec >= 1000000000u)
		return -EINVAL;
	if (n->type == CAIRN_NODE_DIR ? n->nlink != 0 : n->nlink == 0)
		return -EINVAL;
	if (n->flags & ~CAIRN_NODE_OPAQUE || (n->flags && n->type != CAIRN_NODE_DIR))
		return -EINVAL;
	h.type = n->type;
	h.flags = n->flags;
	CAIRN_SET(h.mode, n->mode);
	CAIRN_SET(h.uid, n->uid);
	CAIRN_SET(h.gid, n->gid);
	CAIRN_SET(h.mtime_sec, n->mtime_sec);
	CAIRN_SET(h.mtime_nsec, n->mtime_nsec);
	CAIRN_SET(h.nlink, n->nlink);
	CAIRN_SET(h.nxattr, (uint32_t)n->nxattr);
	ret = cairn_buf_append(out, &h, sizeof(h));
	if (ret)
		return ret;
	if (n->nlink > 1) {
		ret = cairn_buf_append(out, n->link_key.b, CAIRN_ID_LEN);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < n->nxattr; i++) {
		const struct cairn_xattr *x = &n->xattrs[i];

		if (x->name_len == 0 || x->name_len > CAIRN_XATTR_NAME_MAX ||
		    memchr(x->name, '\0', x->name_len) || x->value_len > CAIRN_XATTR_VALUE_MAX)
			return -EINVAL;
		if (i && cairn_name_cmp(n->xattrs[i - 1].name, n->xattrs[i - 1].name_len, x->name,
				  x->name_len) >= 0)
			return -EINVAL;
		cairn_put16(tmp, (uint16_t)x->name_len);
		cairn_put32(tmp + 2, (uint32_t)x->value_len);
		if ((ret = cairn_buf_append(out, tmp, 6)) ||
		    (ret = cairn_buf_append(out, x->name, x->name_len)) ||
		    (ret = cairn_buf_append(out, x->value, x->value_len)))
			return ret;
	}
	switch (n->type) {
	case CAIRN_NODE_REG: {
		struct cairn_node_reg r = { .kind = n->content_kind };

		if (n->content_kind > CAIRN_CONTENT_LIST ||
		    (n->size == 0) != (n->content_kind == CAIRN_CONTENT_EMPTY))
			return -EINVAL;
		CAIRN_SET(r.size, n->size);
		memcpy(r.content, n->content.b, CAIRN_ID_LEN);
		return cairn_buf_append(out, &r, sizeof(r));
	}
	case CAIRN_NODE_LNK:
		if (n->target_len == 0 || n->target_len > CAIRN_SYMLINK_MAX ||
		    memchr(n->target, '\0', n->target_len))
			return -EINVAL;
		cairn_put32(tmp, (uint32_t)n->target_len);
		if ((ret = cairn_buf_append(out, tmp, 4)))
			return ret;
		return cairn_buf_append(out, n->target, n->target_len);
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_BLK:
		cairn_put32(tmp, n->major);
		cairn_put32(tmp + 4, n->minor);
		return cairn_buf_append(out, tmp, 8);
	case CAIRN_NODE_DIR: {
		struct cairn_dir_disk d;
		size_t names = 0;

		for (size_t i = 0; i < n->nentries; i++) {
			const struct cairn_dirent *e = &n->entries[i];

			if (!valid_entry_name(e->name, e->name_len) || !valid_type(e->type))
				return -EINVAL;
			if (i && cairn_name_cmp(n->entries[i - 1].name, n->entries[i - 1].name_len,
					  e->name, e->name_len) >= 0)
				return -EINVAL;
			names += e->name_len;
		}
		if (n->nentries > UINT32_MAX || names > UINT32_MAX)
			return -E2BIG;
		CAIRN_SET(d.count, (uint32_t)n->nentries);
		CAIRN_SET(d.names_len, (uint32_t)names);
		ret = cairn_buf_reserve(out, sizeof(d) + n->nentries * sizeof(struct cairn_dirent_disk) +
					     names);
		if (ret)
			return ret;
		cairn_buf_append(out, &d, sizeof(d));
		names = 0;
		for (size_t i = 0; i < n->nentries; i++) {
			struct cairn_dirent_disk e = { .type = n->entries[i].type };

			memcpy(e.id, n->entries[i].id.b, CAIRN_ID_LEN);
			CAIRN_SET(e.name_off, (uint32_t)names);
			CAIRN_SET(e.name_len, (uint16_t)n->entries[i].name_len);
			cairn_buf_append(out, &e, sizeof(e));
			names += n->entries[i].name_len;
		}
		for (size_t i = 0; i < n->nentries; i++)
			cairn_buf_append(out, n->entries[i].name, n->entries[i].name_len);
		return 0;
	}
	default:
		return 0;
	}
}

int cairn_dir_entry(const struct cairn_node_view *v, uint32_t i, struct cairn_dirent *out)
{
	struct cairn_dirent_disk e;
	uint32_t off;
	uint16_t len;

	memcpy(&e, v->dirents + (size_t)i * sizeof(e), sizeof(e));
	off = CAIRN_GET(e.name_off);
	len = CAIRN_GET(e.name_len);
	if (off > v->names_len || len > v->names_len - off)
		return -EUCLEAN;
	out->name = (const char *)v->names + off;
	out->name_len = len;
	memcpy(out->id.b, e.id, CAIRN_ID_LEN);
	out->type = e.type;
	return 0;
}

int cairn_dir_lookup(const struct cairn_node_view *v, const char *name, size_t len,
		     struct cairn_dirent *out, uint32_t *pos)
{
	uint32_t lo = 0, hi = v->nentries;
	struct cairn_dirent e;
	int ret, c;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		ret = cairn_dir_entry(v, mid, &e);
		if (ret)
			return ret;
		c = cairn_name_cmp(name, len, e.name, e.name_len);
		if (c == 0) {
			if (out)
				*out = e;
			if (pos)
				*pos = mid;
			return 0;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (pos)
		*pos = lo;
	return -ENOENT;
}

void cairn_dir_merge_init(struct cairn_dir_merge *m, const struct cairn_node_view *a,
			  const struct cairn_node_view *b)
{
	*m = (struct cairn_dir_merge){ .a = a, .b = b };
}

int cairn_dir_merge_next(struct cairn_dir_merge *m, struct cairn_dirent *ea,
			 struct cairn_dirent *eb)
{
	bool ha = m->a && m->i < m->a->nentries, hb = m->b && m->j < m->b->nentries;
	int c;

	if ((ha && cairn_dir_entry(m->a, m->i, ea)) || (hb && cairn_dir_entry(m->b, m->j, eb)))
		return -EUCLEAN;
	if (!ha && !hb)
		return 0;
	c = !hb ? -1 : !ha ? 1 : cairn_name_cmp(ea->name, ea->name_len, eb->name, eb->name_len);
	if (c < 0) {
		m->i++;
		return CAIRN_MERGE_A;
	}
	if (c > 0) {
		m->j++;
		return CAIRN_MERGE_B;
	}
	m->i++;
	m->j++;
	return CAIRN_MERGE_BOTH;
}

int cairn_xattr_next(const struct cairn_node_view *v, size_t *off, struct cairn_xattr *x)
{
	size_t o = *off;
	uint16_t nl;
	uint32_t vl;

	if (o >= v->xattrs_len)
		return -ENOENT;
	if (v->xattrs_len - o < 6)
		return -EUCLEAN;
	nl = cairn_le16(v->xattrs + o);
	vl = cairn_le32(v->xattrs + o + 2);
	o += 6;
	if (v->xattrs_len - o < (size_t)nl + vl)
		return -EUCLEAN;
	x->name = (const char *)v->xattrs + o;
	x->name_len = nl;
	x->value = v->xattrs + o + nl;
	x->value_len = vl;
	*off = o + nl + vl;
	return 0;
}

int cairn_xattr_get(const struct cairn_node_view *v, const char *name, struct cairn_xattr *x)
{
	size_t off = 0, len = strlen(name);
	int ret;

	while ((ret = cairn_xattr_next(v, &off, x)) == 0)
		if (x->name_len == len && memcmp(x->name, name, len) == 0)
			return 0;
	return ret == -ENOENT ? -ENODATA : ret;
}

/* Walks the xattr records to find where they end; strict also checks order. */
static int xattrs_measure(struct cairn_node_view *v, const uint8_t *p, size_t len, bool strict)
{
	struct cairn_xattr x, prev = { 0 };
	size_t off = 0;

	v->xattrs = p;
	v->xattrs_len = len;
	for (uint32_t i = 0; i < v->nxattr; i++) {
		int ret = cairn_xattr_next(v, &off, &x);

		if (ret)
			return -EUCLEAN;
		if (strict && (x.name_len == 0 || x.name_len > CAIRN_XATTR_NAME_MAX ||
			       memchr(x.name, '\0', x.name_len) ||
			       x.value_len > CAIRN_XATTR_VALUE_MAX ||
			       (i && cairn_name_cmp(prev.name, prev.name_len, x.name, x.name_len) >= 0)))
			return -EUCLEAN;
		prev = x;
	}
	v->xattrs_len = off;
	return 0;
}

int cairn_node_parse(const void *val, size_t len, unsigned flags, struct cairn_node_view *v)
{
	const uint8_t *p = val;
	bool strict = flags & CAIRN_PARSE_STRICT;
	struct cairn_node_disk h;
	size_t off, rest;
	int ret;

	memset(v, 0, sizeof(*v));
	if (len < sizeof(h))
		return -EUCLEAN;
	memcpy(&h, p, sizeof(h));
	if (h.version != CAIRN_FORMAT_VERSION || !valid_type(h.type))
		return -EUCLEAN;
	v->type = h.type;
	v->flags = h.flags;
	v->mode = CAIRN_GET(h.mode);
	v->uid = CAIRN_GET(h.uid);
	v->gid = CAIRN_GET(h.gid);
	v->mtime_sec = CAIRN_GET(h.mtime_sec);
	v->mtime_nsec = CAIRN_GET(h.mtime_nsec);
	v->nlink = CAIRN_GET(h.nlink);
	v->nxattr = CAIRN_GET(h.nxattr);
	if (v->mode & ~07777u || v->mtime_nsec >= 1000000000u)
		return -EUCLEAN;
	if (v->type == CAIRN_NODE_DIR ? v->nlink != 0 : v->nlink == 0)
		return -EUCLEAN;
	if (h.flags & ~CAIRN_NODE_OPAQUE || (h.flags && v->type != CAIRN_NODE_DIR) || h.reserved)
		return -EUCLEAN;
	off = sizeof(h);
	if (v->nlink > 1) {
		if (len - off < CAIRN_ID_LEN)
			return -EUCLEAN;
		memcpy(v->link_key.b, p + off, CAIRN_ID_LEN);
		off += CAIRN_ID_LEN;
	}
	ret = xattrs_measure(v, p + off, len - off, strict);
	if (ret)
		return ret;
	off += v->xattrs_len;
	rest = len - off;
	p += off;

	switch (v->type) {
	case CAIRN_NODE_REG: {
		struct cairn_node_reg r;

		if (rest != sizeof(r))
			return -EUCLEAN;
		memcpy(&r, p, sizeof(r));
		v->size = CAIRN_GET(r.size);
		v->content_kind = r.kind;
		memcpy(v->content.b, r.content, CAIRN_ID_LEN);
		if (r.kind > CAIRN_CONTENT_LIST || (v->size == 0) != (r.kind == CAIRN_CONTENT_EMPTY))
			return -EUCLEAN;
		if (r.kind == CAIRN_CONTENT_CHUNK && v->size > CAIRN_ONE_CHUNK_MAX)
			return -EUCLEAN;
		return 0;
	}
	case CAIRN_NODE_LNK:
		if (rest < 4)
			return -EUCLEAN;
		v->target_len = cairn_le32(p);
		if (v->target_len == 0 || v->target_len > CAIRN_SYMLINK_MAX ||
		    rest - 4 != v->target_len)
			return -EUCLEAN;
		v->target = (const char *)p + 4;
		if (strict && memchr(v->target, '\0', v->target_len))
			return -EUCLEAN;
		return 0;
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_BLK:
		if (rest != 8)
			return -EUCLEAN;
		v->major = cairn_le32(p);
		v->minor = cairn_le32(p + 4);
		return 0;
	case CAIRN_NODE_DIR: {
		struct cairn_dir_disk d;
		struct cairn_dirent e, prev = { 0 };
		uint32_t names = 0;

		if (rest < sizeof(d))
			return -EUCLEAN;
		memcpy(&d, p, sizeof(d));
		v->nentries = CAIRN_GET(d.count);
		v->names_len = CAIRN_GET(d.names_len);
		rest -= sizeof(d);
		if ((uint64_t)v->nentries * sizeof(struct cairn_dirent_disk) + v->names_len != rest)
			return -EUCLEAN;
		v->dirents = p + sizeof(d);
		v->names = v->dirents + (size_t)v->nentries * sizeof(struct cairn_dirent_disk);
		if (!strict)
			return 0;
		/* canonical: names packed in entry order, no spare bytes, reserved zero */
		for (uint32_t i = 0; i < v->nentries; i++) {
			struct cairn_dirent_disk dd;

			memcpy(&dd, v->dirents + (size_t)i * sizeof(dd), sizeof(dd));
			if (CAIRN_GET(dd.name_off) != names || dd.reserved)
				return -EUCLEAN;
			if (cairn_dir_entry(v, i, &e) || !valid_entry_name(e.name, e.name_len) ||
			    !valid_type(e.type))
				return -EUCLEAN;
			if (i && cairn_name_cmp(prev.name, prev.name_len, e.name, e.name_len) >= 0)
				return -EUCLEAN;
			prev = e;
			names += (uint32_t)e.name_len;
		}
		return names == v->names_len ? 0 : -EUCLEAN;
	}
	default:
		return rest == 0 ? 0 : -EUCLEAN;
	}
}

int cairn_node_view_build(const struct cairn_node_view *v, struct cairn_node_build *n,
			  struct cairn_xattr **xattrs)
{
	struct cairn_xattr *xa = NULL;
	size_t off = 0;

	*xattrs = NULL;
	memset(n, 0, sizeof(*n));
	if (v->nxattr) {
		xa = calloc(v->nxattr, sizeof(*xa));
		if (!xa)
			return -ENOMEM;
		for (uint32_t i = 0; i < v->nxattr; i++) {
			if (cairn_xattr_next(v, &off, &xa[i])) {
				free(xa);
				return -EUCLEAN;
			}
		}
	}
	n->type = v->type;
	n->flags = v->flags;
	n->mode = v->mode;
	n->uid = v->uid;
	n->gid = v->gid;
	n->mtime_sec = v->mtime_sec;
	n->mtime_nsec = v->mtime_nsec;
	n->nlink = v->nlink;
	n->link_key = v->link_key;
	n->xattrs = xa;
	n->nxattr = v->nxattr;
	n->size = v->size;
	n->content_kind = v->content_kind;
	n->content = v->content;
	n->target = v->target;
	n->target_len = v->target_len;
	n->major = v->major;
	n->minor = v->minor;
	*xattrs = xa;
	return 0;
}

uint32_t cairn_type_st_mode(uint8_t type)
{
	switch (type) {
	case CAIRN_NODE_REG:
		return S_IFREG;
	case CAIRN_NODE_DIR:
		return S_IFDIR;
	case CAIRN_NODE_LNK:
		return S_IFLNK;
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_WHITEOUT:
		return S_IFCHR;
	case CAIRN_NODE_BLK:
		return S_IFBLK;
	case CAIRN_NODE_FIFO:
		return S_IFIFO;
	case CAIRN_NODE_SOCK:
		return S_IFSOCK;
	default:
		return 0;
	}
}

uint32_t cairn_node_st_mode(const struct cairn_node_view *v)
{
	return cairn_type_st_mode(v->type) | v->mode;
}

char cairn_type_char(uint8_t type)
{
	static const char c[] = "?-dlcbpsw";

	return type < sizeof(c) - 1 ? c[type] : '?';
}

int cairn_content_encode(const struct cairn_extent_disk *ext, uint32_t count, uint64_t size,
			 struct cairn_buf *out)
{
	struct cairn_content_disk h = { .version = CAIRN_FORMAT_VERSION };
	int ret;

	CAIRN_SET(h.count, count);
	CAIRN_SET(h.size, size);
	ret = cairn_buf_append(out, &h, sizeof(h));
	if (ret)
		return ret;
	return cairn_buf_append(out, ext, (size_t)count * sizeof(*ext));
}

int cairn_content_parse(const void *val, size_t len, unsigned flags,
			struct cairn_content_view *v)
{
	struct cairn_content_disk h;
	struct cairn_extent e;
	bool holes = false, prev_hole = false;
	uint64_t prev = 0;

	memset(v, 0, sizeof(*v));
	if (len < sizeof(h))
		return -EUCLEAN;
	memcpy(&h, val, sizeof(h));
	v->count = CAIRN_GET(h.count);
	v->size = CAIRN_GET(h.size);
	if (h.version != CAIRN_FORMAT_VERSION || h.reserved[0] || h.reserved[1] || h.reserved[2] ||
	    v->count == 0 ||
	    (uint64_t)v->count * sizeof(struct cairn_extent_disk) != len - sizeof(h))
		return -EUCLEAN;
	v->extents = (const uint8_t *)val + sizeof(h);
	cairn_content_extent(v, v->count - 1, &e);
	if (e.end != v->size)
		return -EUCLEAN;
	if (!(flags & CAIRN_PARSE_STRICT))
		return 0;
	/* canonical (format.h): holes are whole aligned blocks, never two in a row */
	for (uint32_t i = 0; i < v->count; i++) {
		cairn_content_extent(v, i, &e);
		if (e.end <= prev || (!e.hole && e.end - prev > CAIRN_CHUNK_MAX_LIMIT))
			return -EUCLEAN;
		if (e.hole && (e.start % CAIRN_HOLE_BLOCK || e.end % CAIRN_HOLE_BLOCK ||
			       prev_hole))
			return -EUCLEAN;
		holes |= e.hole;
		prev_hole = e.hole;
		prev = e.end;
	}
	/* a list with no hole is a file too large to be one chunk */
	return holes || v->size > CAIRN_ONE_CHUNK_MAX ? 0 : -EUCLEAN;
}

void cairn_content_single(const struct cairn_id *chunk, uint64_t size,
			  struct cairn_content_view *v)
{
	memset(v, 0, sizeof(*v));
	v->size = size;
	v->count = 1;
	CAIRN_SET(v->one.end, size);
	memcpy(v->one.id, chunk->b, CAIRN_ID_LEN);
	v->extents = (const uint8_t *)&v->one;
}

void cairn_content_extent(const struct cairn_content_view *v, uint32_t i,
			  struct cairn_extent *out)
{
	struct cairn_extent_disk e;

	memcpy(&e, v->extents + (size_t)i * sizeof(e), sizeof(e));
	out->end = CAIRN_GET(e.end);
	if (i == 0) {
		out->start = 0;
	} else {
		struct cairn_extent_disk p;

		memcpy(&p, v->extents + (size_t)(i - 1) * sizeof(p), sizeof(p));
		out->start = CAIRN_GET(p.end);
	}
	memcpy(out->id.b, e.id, CAIRN_ID_LEN);
	out->hole = cairn_id_is_zero(&out->id);
	if (out->start > out->end)
		out->start = out->end; /* garbled; strict parse rejects it */
}

uint32_t cairn_content_find(const struct cairn_content_view *v, uint64_t offset)
{
	uint32_t lo = 0, hi = v->count;

	/* first extent whose end > offset */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct cairn_extent_disk e;

		memcpy(&e, v->extents + (size_t)mid * sizeof(e), sizeof(e));
		if (CAIRN_GET(e.end) <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count ? lo : v->count - 1;
}
