/* SPDX-License-Identifier: MIT */
/*
 * import_oci.c - an OCI image layout becomes images: index.json, then each
 * manifest, its config and its layers, bottom first (see oci.h).
 *
 * Everything in a layout is untrusted. Every blob is found only by its
 * digest (64 hex digits: no path can be smuggled in), must be a regular
 * file of the size its descriptor gives, and must hash to its digest.
 * The checks come in two rounds: before anything is written, every JSON
 * document is read, hashed and parsed, and every layer blob is hashed, so
 * a wrong, missing or mislabelled blob is one clear error and the store
 * never sees a byte of it; then each layer is hashed again as it is
 * imported (compressed: its digest; uncompressed: the config's diff_id),
 * so a layout that changes under the import fails too.
 *
 * A layer is decompressed once, by a libarchive "raw" reader, and that
 * plain tar stream feeds the tar importer (import_tar_stream()) while it
 * is hashed. Each layer's tree is stacked on the tree below it
 * (cairn_stack) before the next one is read, since a layer's implied
 * directories take their attributes from the tree below.
 */
#include <archive.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "import.h"
#include "oci.h"
#include "stack.h"

#define BLOB_BUF (256u * 1024)
#define WHAT_MAX 200

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD };

static const struct {
	const char *type;
	enum compression comp;
	int filter; /* libarchive's code for it */
	const char *name;
} layer_types[] = {
	{ OCI_MT_LAYER, COMP_NONE, ARCHIVE_FILTER_NONE, "uncompressed" },
	{ OCI_MT_LAYER_GZIP, COMP_GZIP, ARCHIVE_FILTER_GZIP, "gzip" },
	{ OCI_MT_LAYER_ZSTD, COMP_ZSTD, ARCHIVE_FILTER_ZSTD, "zstd" },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", COMP_NONE,
	  ARCHIVE_FILTER_NONE, "uncompressed" },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", COMP_GZIP,
	  ARCHIVE_FILTER_GZIP, "gzip" },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", COMP_ZSTD,
	  ARCHIVE_FILTER_ZSTD, "zstd" },
	{ DOCKER_MT_LAYER_GZIP, COMP_GZIP, ARCHIVE_FILTER_GZIP, "gzip" },
};

struct layer {
	struct oci_desc desc;
	char diff_id[OCI_DIGEST_LEN + 1];
	unsigned type;        /* index into layer_types */
	struct cairn_id id;   /* its tree, once imported */
};

/* One manifest to import. */
struct image {
	struct oci_desc desc;         /* from index.json */
	const char *tag;              /* NULL: untagged */
	char name[WHAT_MAX];          /* for messages: "'REF'" or the digest */
	struct json_object *manifest, *config;
	struct layer *layers;
	size_t nlayers;
	struct cairn_id *ids;         /* the layers' trees, bottom first */
	struct cairn_stack_result top;
};

/* A layer already stacked on some tree: the same pair gives the same result. */
struct stacked {
	struct cairn_id below;        /* zero: the bottom layer */
	char digest[OCI_DIGEST_LEN + 1];
	struct cairn_id layer;
	struct cairn_stack_result res;
};

struct oci_import {
	struct cairn_writer *w;
	const struct oci_import_opts *o;
	int dirfd;
	struct json_object *index;
	struct image *images;
	size_t nimages;
	struct stacked *done;
	size_t ndone;
	uint8_t *buf;                 /* BLOB_BUF bytes */
};

/* --- blobs -------------------------------------------------------------- */

/* Opens a blob by its descriptor: a regular file of the size it says. */
static int blob_open(struct oci_import *x, const struct oci_desc *d, const char *what, int *fd)
{
	char path[OCI_DIGEST_LEN + 16], eb[128];
	struct stat st;

	oci_blob_path(d->digest, path, sizeof(path));
	*fd = openat(x->dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (*fd < 0) {
		int e = errno;

		if (e == ENOENT)
			return cairn_err(-ENOENT, "%s: blob %s is missing from the layout", what,
					 d->digest);
		return cairn_err(-e, "%s: cannot open blob %s: %s", what, d->digest,
				 cairn_strerror(e, eb, sizeof(eb)));
	}
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return cairn_err(-EINVAL, "%s: blob %s is not a regular file", what, d->digest);
	}
	if ((uint64_t)st.st_size != (uint64_t)d->size) {
		close(*fd);
		*fd = -1;
		return cairn_err(-EINVAL, "%s: blob %s is %llu bytes, its descriptor says %lld",
				 what, d->digest, (unsigned long long)st.st_size,
				 (long long)d->size);
	}
	fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK);
	posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

static ssize_t read_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static int mismatch(const char *what, const struct oci_desc *d, const char *got)
{
	return cairn_err(-EINVAL, "%s: blob %s does not match its digest (its bytes hash to %s)",
			 what, d->digest, got);
}

/* Hashes a whole blob and checks it against its descriptor. */
static int blob_verify(struct oci_import *x, const struct oci_desc *d, const char *what)
{
	char got[OCI_DIGEST_LEN + 1], eb[128];
	struct sha256_ctx h;
	uint64_t total = 0;
	cleanup_fd int fd = -1;
	ssize_t n;
	int ret = blob_open(x, d, what, &fd);

	if (ret)
		return ret;
	sha256_init(&h);
	while ((n = read_some(fd, x->buf, BLOB_BUF)) > 0) {
		sha256_update(&h, (size_t)n, x->buf);
		total += (uint64_t)n;
	}
	if (n < 0)
		return cairn_err((int)n, "%s: cannot read blob %s: %s", what, d->digest,
				 cairn_strerror((int)-n, eb, sizeof(eb)));
	oci_digest_finish(&h, got);
	if (total != (uint64_t)d->size)
		return cairn_err(-EINVAL, "%s: blob %s changed while it was read", what, d->digest);
	return strcmp(got, d->digest) ? mismatch(what, d, got) : 0;
}

/* Reads, checks and parses a JSON blob (a manifest or a config). */
static struct json_object *blob_json(struct oci_import *x, const struct oci_desc *d,
				     const char *what)
{
	char got[OCI_DIGEST_LEN + 1], eb[128];
	cleanup_free char *buf = NULL;
	cleanup_fd int fd = -1;
	struct sha256_ctx h;
	size_t len = 0;
	ssize_t n;

	if (d->size > (int64_t)OCI_JSON_MAX) {
		cairn_err(-EFBIG, "%s: blob %s is %lld bytes; cairn reads JSON documents of at "
				  "most %u", what, d->digest, (long long)d->size, OCI_JSON_MAX);
		return NULL;
	}
	if (blob_open(x, d, what, &fd))
		return NULL;
	buf = malloc((size_t)d->size + 1);
	if (!buf) {
		cairn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	while (len <= (size_t)d->size &&
	       (n = read_some(fd, buf + len, (size_t)d->size + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		cairn_err((int)n, "%s: cannot read blob %s: %s", what, d->digest,
			  cairn_strerror((int)-n, eb, sizeof(eb)));
		return NULL;
	}
	if (len != (size_t)d->size) {
		cairn_err(-EINVAL, "%s: blob %s changed while it was read", what, d->digest);
		return NULL;
	}
	sha256_init(&h);
	sha256_update(&h, len, (const uint8_t *)buf);
	oci_digest_finish(&h, got);
	if (strcmp(got, d->digest)) {
		mismatch(what, d, got);
		return NULL;
	}
	return oci_json_parse(buf, len, what);
}

/* Reads a small file of the layout (oci-layout, index.json). */
static struct json_object *layout_json(struct oci_import *x, const char *name)
{
	cleanup_free char *buf = malloc(OCI_JSON_MAX + 1);
	cleanup_fd int fd = -1;
	char eb[128];
	size_t len = 0;
	ssize_t n = 0;
	struct stat st;

	if (!buf) {
		cairn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	fd = openat(x->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			cairn_err(-ENOENT, "not an OCI image layout: it has no %s", name);
		else
			cairn_err(-errno, "cannot open %s: %s", name,
				  cairn_strerror(errno, eb, sizeof(eb)));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cairn_err(-EINVAL, "%s is not a regular file", name);
		return NULL;
	}
	while (len <= OCI_JSON_MAX && (n = read_some(fd, buf + len, OCI_JSON_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		cairn_err((int)n, "cannot read %s: %s", name, cairn_strerror((int)-n, eb, sizeof(eb)));
		return NULL;
	}
	if (len > OCI_JSON_MAX) {
		cairn_err(-EFBIG, "%s is larger than %u bytes", name, OCI_JSON_MAX);
		return NULL;
	}
	return oci_json_parse(buf, len, name);
}

/* --- JSON fields -------------------------------------------------------- */

static struct json_object *field(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, type) ? v : NULL;
}

static int schema_2(struct json_object *o, const char *what)
{
	struct json_object *v = field(o, "schemaVersion", json_type_int);

	if (!v || json_object_get_int64(v) != 2)
		return cairn_err(-EINVAL, "%s: schemaVersion is not 2", what);
	return 0;
}

/* --- the index: which manifests --------------------------------------- */

static int check_layout(struct oci_import *x)
{
	struct json_object *l = layout_json(x, "oci-layout"), *v;
	int ret = 0;

	if (!l)
		return -EINVAL;
	v = field(l, "imageLayoutVersion", json_type_string);
	if (!v)
		ret = cairn_err(-EINVAL, "oci-layout has no imageLayoutVersion");
	else if (strcmp(json_object_get_string(v), OCI_LAYOUT_VERSION))
		ret = cairn_err(-ENOTSUP, "oci-layout says version '%.40s'; cairn reads %s",
				json_object_get_string(v), OCI_LAYOUT_VERSION);
	json_object_put(l);
	return ret;
}

static int manifest_type_ok(const struct oci_desc *d, const char *what)
{
	if (!strcmp(d->media_type, OCI_MT_MANIFEST) || !strcmp(d->media_type, DOCKER_MT_MANIFEST))
		return 0;
	if (!strcmp(d->media_type, OCI_MT_INDEX) || !strcmp(d->media_type, DOCKER_MT_LIST))
		return cairn_err(-ENOTSUP, "%s is an index of images for several platforms; cairn "
					   "imports single-platform manifests (copy one platform "
					   "out with skopeo)", what);
	return cairn_err(-ENOTSUP, "%s has media type '%.100s', not an image manifest", what,
			 d->media_type);
}

static int select_images(struct oci_import *x, const char *ref)
{
	struct json_object *m = field(x->index, "manifests", json_type_array);
	char what[WHAT_MAX];
	size_t n;
	int ret;

	ret = schema_2(x->index, "index.json");
	if (ret)
		return ret;
	if (!m)
		return cairn_err(-EINVAL, "index.json has no manifests array");
	n = json_object_array_length(m);
	x->images = calloc(n ? n : 1, sizeof(*x->images));
	if (!x->images)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct image *img = &x->images[x->nimages];

		snprintf(what, sizeof(what), "index.json manifest %zu", i + 1);
		ret = oci_desc_parse(json_object_array_get_idx(m, i), what, &img->desc);
		if (ret)
			return ret;
		if (ref && (!img->desc.ref || strcmp(img->desc.ref, ref)))
			continue;
		if (img->desc.ref)
			snprintf(img->name, sizeof(img->name), "manifest '%.100s'", img->desc.ref);
		else
			snprintf(img->name, sizeof(img->name), "manifest %s", img->desc.digest);
		ret = manifest_type_ok(&img->desc, img->name);
		if (ret)
			return ret;
		x->nimages++;
	}
	if (ref && x->nimages == 0)
		return cairn_err(-ENOENT, "index.json names no manifest '%.100s'", ref);
	if (ref && x->nimages > 1)
		return cairn_err(-EINVAL, "index.json names %zu manifests '%.100s'", x->nimages, ref);
	if (x->nimages == 0)
		return cairn_err(-EINVAL, "index.json lists no manifest");
	if (x->o->tag && x->nimages > 1)
		return cairn_err(-EINVAL, "--tag names one image and index.json lists %zu: pick "
					  "one with oci:DIR:REF", x->nimages);
	for (size_t i = 0; i < x->nimages; i++) {
		struct image *img = &x->images[i];

		img->tag = x->o->tag ? x->o->tag : img->desc.ref;
		if (img->tag && !x->o->tag && cairn_tag_check(img->tag))
			return cairn_err(-EINVAL, "%s: '%.100s' is not a valid cairn tag (letters, "
						  "digits, '.', '_', '-'); import it with oci:DIR:REF "
						  "--tag NAME", img->name, img->tag);
		for (size_t j = 0; j < i && img->tag; j++)
			if (x->images[j].tag && !strcmp(x->images[j].tag, img->tag))
				return cairn_err(-EINVAL, "index.json names two manifests '%.100s'",
						 img->tag);
	}
	return 0;
}

/* --- manifests and configs ---------------------------------------------- */

static int layer_type(const struct oci_desc *d, const char *what, unsigned *type)
{
	for (unsigned i = 0; i < ARRAY_SIZE(layer_types); i++) {
		if (!strcmp(d->media_type, layer_types[i].type)) {
			*type = i;
			return 0;
		}
	}
	return cairn_err(-ENOTSUP, "%s has media type '%.100s', not a tar layer (plain, gzip "
				   "or zstd)", what, d->media_type);
}

static int read_manifest(struct oci_import *x, struct image *img)
{
	struct json_object *mt, *cfg, *layers, *rootfs, *type, *diffs;
	struct oci_desc cd;
	char what[WHAT_MAX + 64];
	int ret;

	img->manifest = blob_json(x, &img->desc, img->name);
	if (!img->manifest)
		return -EINVAL;
	ret = schema_2(img->manifest, img->name);
	if (ret)
		return ret;
	mt = field(img->manifest, "mediaType", json_type_string);
	if (mt && strcmp(json_object_get_string(mt), img->desc.media_type))
		return cairn_err(-EINVAL, "%s says its media type is '%.100s', index.json says "
					  "'%.100s'", img->name, json_object_get_string(mt),
				 img->desc.media_type);
	cfg = field(img->manifest, "config", json_type_object);
	layers = field(img->manifest, "layers", json_type_array);
	if (!cfg || !layers)
		return cairn_err(-EINVAL, "%s has no config or no layers", img->name);
	snprintf(what, sizeof(what), "config of %s", img->name);
	ret = oci_desc_parse(cfg, what, &cd);
	if (ret)
		return ret;
	if (strcmp(cd.media_type, OCI_MT_CONFIG) && strcmp(cd.media_type, DOCKER_MT_CONFIG))
		return cairn_err(-ENOTSUP, "%s has media type '%.100s', not an image config", what,
				 cd.media_type);
	img->nlayers = json_object_array_length(layers);
	if (img->nlayers == 0)
		return cairn_err(-EINVAL, "%s has no layers", img->name);
	img->layers = calloc(img->nlayers, sizeof(*img->layers));
	img->ids = calloc(img->nlayers, sizeof(*img->ids));
	if (!img->layers || !img->ids)
		return -ENOMEM;
	for (size_t i = 0; i < img->nlayers; i++) {
		struct layer *l = &img->layers[i];

		snprintf(what, sizeof(what), "layer %zu of %zu of %s", i + 1, img->nlayers,
			 img->name);
		ret = oci_desc_parse(json_object_array_get_idx(layers, i), what, &l->desc);
		if (!ret)
			ret = layer_type(&l->desc, what, &l->type);
		if (ret)
			return ret;
	}

	snprintf(what, sizeof(what), "config of %s", img->name);
	img->config = blob_json(x, &cd, what);
	if (!img->config)
		return -EINVAL;
	rootfs = field(img->config, "rootfs", json_type_object);
	type = rootfs ? field(rootfs, "type", json_type_string) : NULL;
	diffs = rootfs ? field(rootfs, "diff_ids", json_type_array) : NULL;
	if (!type || strcmp(json_object_get_string(type), "layers") || !diffs)
		return cairn_err(-EINVAL, "%s has no rootfs of type 'layers' with diff_ids", what);
	if (json_object_array_length(diffs) != img->nlayers)
		return cairn_err(-EINVAL, "%s lists %zu diff_ids for %zu layers", what,
				 json_object_array_length(diffs), img->nlayers);
	for (size_t i = 0; i < img->nlayers; i++) {
		struct json_object *d = json_object_array_get_idx(diffs, i);

		if (!json_object_is_type(d, json_type_string) ||
		    !oci_digest_valid(json_object_get_string(d)))
			return cairn_err(-EINVAL, "%s: diff_id %zu is not a sha256 digest", what,
					 i + 1);
		memcpy(img->layers[i].diff_id, json_object_get_string(d), OCI_DIGEST_LEN + 1);
	}
	return 0;
}

/* --- layers ------------------------------------------------------------- */

/* One layer being read: its blob, decompressed once, hashed on both sides. */
struct layer_reader {
	struct oci_import *x;
	const char *what;
	int fd;
	struct sha256_ctx blob, diff;
	uint64_t blob_bytes, diff_bytes;
	struct archive *raw;
	bool eof;
};

static la_ssize_t blob_read(struct archive *a, void *ctx, const void **out)
{
	struct layer_reader *r = ctx;
	ssize_t n = read_some(r->fd, r->x->buf, BLOB_BUF);

	if (n < 0) {
		archive_set_error(a, (int)-n, "cannot read the blob: %s", strerror((int)-n));
		return -1;
	}
	sha256_update(&r->blob, (size_t)n, r->x->buf);
	r->blob_bytes += (uint64_t)n;
	*out = r->x->buf;
	return n;
}

static int raw_fail(struct layer_reader *r, const char *doing)
{
	const char *m = archive_error_string(r->raw);
	int e = archive_errno(r->raw);

	return cairn_err(e > 0 ? -e : -EIO, "%s: %s: %s", r->what, doing,
			 m ? m : "libarchive failed");
}

/* The decompressed stream, for the tar importer (struct tar_stream). */
static ssize_t layer_stream(void *ctx, const void **buf)
{
	struct layer_reader *r = ctx;
	const void *p;
	size_t len;
	la_int64_t off;
	int rc;

	if (r->eof)
		return 0;
	do /* an empty block is not the end */
		rc = archive_read_data_block(r->raw, &p, &len, &off);
	while (rc == ARCHIVE_OK && len == 0);
	if (rc == ARCHIVE_EOF) {
		r->eof = true;
		return 0;
	}
	if (rc != ARCHIVE_OK)
		return raw_fail(r, "cannot decompress it");
	if (off < 0 || (uint64_t)off != r->diff_bytes)
		return cairn_err(-EIO, "%s: the decompressed stream has a gap", r->what);
	sha256_update(&r->diff, len, p);
	r->diff_bytes += len;
	*buf = p;
	return (ssize_t)len;
}

/* Checks the compression the blob really has against its media type. */
static int check_filter(struct layer_reader *r, const struct layer *l)
{
	int got = archive_filter_code(r->raw, 0);
	const char *is = got == ARCHIVE_FILTER_GZIP ? "gzip"
			 : got == ARCHIVE_FILTER_ZSTD ? "zstd"
			 : got == ARCHIVE_FILTER_NONE ? "uncompressed"
						      : archive_filter_name(r->raw, 0);

	if (got == layer_types[l->type].filter)
		return 0;
	return cairn_err(-EINVAL, "%s: its media type says %s, the blob is %s", r->what,
			 layer_types[l->type].name, is ? is : "something else");
}

static int import_layer(struct oci_import *x, const struct layer *l, const char *what,
			const struct cairn_id *below, struct cairn_id *out)
{
	struct layer_reader r = { .x = x, .what = what, .fd = -1 };
	struct tar_stream in = { .read = layer_stream, .ctx = &r };
	struct import_tar_opts to = { .max_bytes = x->o->max_bytes,
				      .max_entries = x->o->max_entries, .show = x->o->show,
				      .layer = true, .base = below };
	struct import_result res;
	char blob[OCI_DIGEST_LEN + 1], diff[OCI_DIGEST_LEN + 1], msg[1024];
	struct archive_entry *e;
	const void *p;
	ssize_t n;
	int ret;

	ret = blob_open(x, &l->desc, what, &r.fd);
	if (ret)
		return ret;
	sha256_init(&r.blob);
	sha256_init(&r.diff);
	r.raw = archive_read_new();
	if (!r.raw) {
		ret = -ENOMEM;
		goto out;
	}
	if (archive_read_support_format_raw(r.raw) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(r.raw) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(r.raw) != ARCHIVE_OK ||
	    archive_read_support_filter_none(r.raw) != ARCHIVE_OK) {
		ret = cairn_err(-ENOTSUP, "libarchive lacks gzip or zstd support: %s",
				archive_error_string(r.raw));
		goto out;
	}
	if (archive_read_open(r.raw, &r, NULL, blob_read, NULL) != ARCHIVE_OK) {
		ret = raw_fail(&r, "cannot decompress it");
		goto out;
	}
	/* the one entry of the raw format: the whole stream */
	ret = archive_read_next_header(r.raw, &e);
	if (ret == ARCHIVE_EOF) {
		r.eof = true;
	} else if (ret != ARCHIVE_OK) {
		ret = raw_fail(&r, "cannot decompress it");
		goto out;
	}
	ret = check_filter(&r, l);
	if (ret)
		goto out;
	ret = import_tar_stream(x->w, &in, &to, &res);
	if (ret) {
		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		/* a stream error already names the layer */
		ret = strncmp(msg, what, strlen(what)) ? cairn_err(ret, "%s: %s", what, msg)
						       : cairn_err(ret, "%s", msg);
		goto out;
	}
	/* what the tar reader left: padding after the end-of-archive blocks */
	while ((n = layer_stream(&r, &p)) > 0)
		;
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	/* and what the decompressor left */
	while ((n = blob_read(r.raw, &r, &p)) > 0)
		;
	if (n < 0) {
		ret = raw_fail(&r, "cannot read it");
		goto out;
	}
	oci_digest_finish(&r.blob, blob);
	oci_digest_finish(&r.diff, diff);
	if (r.blob_bytes != (uint64_t)l->desc.size || strcmp(blob, l->desc.digest)) {
		ret = cairn_err(-EINVAL, "%s: blob %s changed while it was read", what,
				l->desc.digest);
		goto out;
	}
	if (strcmp(diff, l->diff_id)) {
		ret = cairn_err(-EINVAL, "%s: its uncompressed tar hashes to %s, the config's "
					 "diff_id is %s", what, diff, l->diff_id);
		goto out;
	}
	*out = res.root;
out:
	if (r.raw)
		archive_read_free(r.raw);
	close(r.fd);
	return ret;
}

static struct stacked *stacked_find(struct oci_import *x, const struct cairn_id *below,
				    const char *digest)
{
	for (size_t i = 0; i < x->ndone; i++)
		if (cairn_id_eq(&x->done[i].below, below) && !strcmp(x->done[i].digest, digest))
			return &x->done[i];
	return NULL;
}

/* Imports an image's layers bottom first, each stacked on the tree below. */
static int import_image(struct oci_import *x, struct image *img)
{
	struct cairn_id below = { 0 };
	char what[WHAT_MAX + 64];
	int ret;

	for (size_t i = 0; i < img->nlayers; i++) {
		struct layer *l = &img->layers[i];
		struct stacked *s = stacked_find(x, &below, l->desc.digest), *ns;

		if (!s) {
			snprintf(what, sizeof(what), "layer %zu of %zu of %s", i + 1, img->nlayers,
				 img->name);
			ns = realloc(x->done, (x->ndone + 1) * sizeof(*x->done));
			if (!ns)
				return -ENOMEM;
			x->done = ns;
			s = &x->done[x->ndone];
			memset(s, 0, sizeof(*s));
			s->below = below;
			memcpy(s->digest, l->desc.digest, sizeof(s->digest));
			ret = import_layer(x, l, what, i ? &below : NULL, &s->layer);
			if (!ret)
				ret = cairn_writer_flush(x->w);
			if (!ret)
				ret = cairn_stack(x->w, i ? &below : NULL, &s->layer, &s->res);
			if (!ret)
				ret = cairn_writer_flush(x->w);
			if (ret)
				return ret;
			x->ndone++;
		}
		img->ids[i] = s->layer;
		img->top = s->res;
		below = s->res.root;
	}
	return 0;
}

static int publish(struct oci_import *x, struct image *img)
{
	struct cairn_publish pub = {
		.source = CAIRN_LAYER_OCI,
		.layer_root = img->ids[img->nlayers - 1],
		.base_layers = img->ids,
		.nbase = (uint32_t)(img->nlayers - 1),
		.root = img->top.root,
		.logical_size = img->top.logical_size,
		.nodes = img->top.nodes,
		.msg = x->o->msg,
		.tag = img->tag,
	};
	char hex[CAIRN_ID_HEX_LEN + 1];
	struct cairn_id id;
	int ret = cairn_writer_publish(x->w, &pub, &id);

	if (ret)
		return ret;
	cairn_id_hex(&id, hex);
	printf("%s\n", hex);
	return 0;
}

int import_oci(struct cairn_writer *w, const char *dir, const char *ref,
	       const struct oci_import_opts *o)
{
	struct oci_import x = { .w = w, .o = o, .dirfd = -1 };
	char eb[128], what[WHAT_MAX + 64];
	int ret;

	x.buf = malloc(BLOB_BUF);
	if (!x.buf)
		return -ENOMEM;
	x.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.dirfd < 0) {
		ret = cairn_err(-errno, "%s", cairn_strerror(errno, eb, sizeof(eb)));
		goto out;
	}
	ret = check_layout(&x);
	if (ret)
		goto out;
	x.index = layout_json(&x, "index.json");
	if (!x.index) {
		ret = -EINVAL;
		goto out;
	}
	ret = select_images(&x, ref);
	/* every document, then every layer blob, before the store sees anything */
	for (size_t i = 0; !ret && i < x.nimages; i++)
		ret = read_manifest(&x, &x.images[i]);
	for (size_t i = 0; !ret && i < x.nimages; i++) {
		struct image *img = &x.images[i];

		for (size_t j = 0; !ret && j < img->nlayers; j++) {
			snprintf(what, sizeof(what), "layer %zu of %zu of %s", j + 1, img->nlayers,
				 img->name);
			ret = blob_verify(&x, &img->layers[j].desc, what);
		}
	}
	for (size_t i = 0; !ret && i < x.nimages; i++)
		ret = import_image(&x, &x.images[i]);
	for (size_t i = 0; !ret && i < x.nimages; i++)
		ret = publish(&x, &x.images[i]);
out:
	for (size_t i = 0; i < x.nimages; i++) {
		json_object_put(x.images[i].manifest);
		json_object_put(x.images[i].config);
		free(x.images[i].layers);
		free(x.images[i].ids);
	}
	free(x.images);
	free(x.done);
	json_object_put(x.index);
	if (x.dirfd >= 0)
		close(x.dirfd);
	free(x.buf);
	return ret;
}
