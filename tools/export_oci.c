/* SPDX-License-Identifier: MIT */
/*
 * export_oci.c - an image as an OCI image layout: one layer holding the
 * flattened tree, its config and manifest, named in index.json.
 *
 * The layer is the tar 'cairn export' writes (with the root's attributes
 * as a "." entry), hashed as it streams: the tar's SHA-256 is the config's
 * diff_id; gzip'd by a second libarchive writer (the "raw" format: a
 * filter and nothing else), the compressed bytes' SHA-256 is the blob's
 * digest. One pass, nothing held in memory.
 *
 * A layout is changed the way a crash cannot tear: every blob is written
 * to a temporary file, synced and renamed to its digest; index.json last,
 * the same way. Other manifests of an existing layout stay; one of the
 * same name is replaced (its blobs stay behind, as with other tools,
 * until something like 'umoci gc' removes them).
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#include "export.h"
#include "oci.h"

/* A blob being written: a temporary file in blobs/sha256, hashed as it grows. */
struct blob {
	int dirfd;           /* blobs/sha256 */
	char tmp[64];
	int fd;
	struct sha256_ctx h;
	uint64_t size;
	char digest[OCI_DIGEST_LEN + 1];
};

struct oci_export {
	const char *dir;
	unsigned seq;        /* names temporary blobs */
	bool created;        /* the layout is new: a failure removes it */
	int dirfd, blobfd;
	struct blob layer;
	struct sha256_ctx diff; /* the uncompressed tar */
	struct archive *gz;     /* NULL: plain */
	bool failed;            /* gz's output goes nowhere: the blob is being dropped */
};

static int sys_err(int e, const char *what, const char *name)
{
	char eb[128];

	return cairn_err(-e, "cannot %s '%s': %s", what, name, cairn_strerror(e, eb, sizeof(eb)));
}

static int blob_begin(struct oci_export *x, struct blob *b)
{
	b->dirfd = x->blobfd;
	for (int tries = 0; tries < 100; tries++) {
		snprintf(b->tmp, sizeof(b->tmp), ".cairn-tmp-%d-%u", (int)getpid(), x->seq++);
		b->fd = openat(b->dirfd, b->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (b->fd >= 0 || errno != EEXIST)
			break;
	}
	if (b->fd < 0) {
		b->tmp[0] = '\0';
		return sys_err(errno, "create a blob in", x->dir);
	}
	sha256_init(&b->h);
	b->size = 0;
	return 0;
}

static int blob_write(struct blob *b, const void *buf, size_t len)
{
	size_t done = 0;

	sha256_update(&b->h, len, buf);
	b->size += len;
	while (done < len) {
		ssize_t n = write(b->fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return sys_err(n < 0 ? errno : EIO, "write blob", b->tmp);
		done += (size_t)n;
	}
	return 0;
}

/* Syncs the blob and names it by its digest. */
static int blob_finish(struct blob *b)
{
	char name[OCI_DIGEST_LEN];

	oci_digest_finish(&b->h, b->digest);
	if (fsync(b->fd) < 0)
		return sys_err(errno, "sync blob", b->tmp);
	close(b->fd);
	b->fd = -1;
	snprintf(name, sizeof(name), "%s", b->digest + 7);
	if (renameat(b->dirfd, b->tmp, b->dirfd, name) < 0)
		return sys_err(errno, "rename blob", b->tmp);
	b->tmp[0] = '\0';
	return 0;
}

static void blob_abort(struct blob *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	if (b->tmp[0])
		unlinkat(b->dirfd, b->tmp, 0);
	b->tmp[0] = '\0';
}

/* A whole blob from memory (a config or a manifest). */
static int blob_put(struct oci_export *x, const char *data, size_t len, struct blob *b)
{
	int ret = blob_begin(x, b);

	if (!ret)
		ret = blob_write(b, data, len);
	if (!ret)
		ret = blob_finish(b);
	if (ret)
		blob_abort(b);
	return ret;
}

/* --- the layer ---------------------------------------------------------- */

static la_ssize_t gz_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct oci_export *x = ctx;

	if (x->failed)
		return (la_ssize_t)len;
	if (blob_write(&x->layer, buf, len)) {
		archive_set_error(a, EIO, "%s", cairn_errmsg());
		return -1;
	}
	return (la_ssize_t)len;
}

/* The tar's bytes: hashed, then compressed or written as they are. */
static int tar_in(void *ctx, const void *buf, size_t len)
{
	struct oci_export *x = ctx;
	la_ssize_t n;

	sha256_update(&x->diff, len, buf);
	if (!x->gz)
		return blob_write(&x->layer, buf, len);
	n = archive_write_data(x->gz, buf, len);
	if (n < 0 || (size_t)n != len)
		return cairn_err(-EIO, "cannot compress the layer: %s",
				 archive_error_string(x->gz) ? archive_error_string(x->gz) : "?");
	return 0;
}

static int gz_start(struct oci_export *x)
{
	struct archive_entry *e = archive_entry_new();
	int ret = 0;

	x->gz = archive_write_new();
	if (!x->gz || !e) {
		archive_entry_free(e);
		return -ENOMEM;
	}
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_pathname(e, "layer.tar");
	/* no name or time in the gzip header: the same image, the same bytes */
	if (archive_write_add_filter_gzip(x->gz) != ARCHIVE_OK ||
	    archive_write_set_filter_option(x->gz, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
	    archive_write_set_format_raw(x->gz) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(x->gz, 1) != ARCHIVE_OK ||
	    archive_write_open2(x->gz, x, NULL, gz_out, NULL, NULL) != ARCHIVE_OK ||
	    archive_write_header(x->gz, e) != ARCHIVE_OK)
		ret = cairn_err(-EIO, "cannot start gzip: %s", archive_error_string(x->gz));
	archive_entry_free(e);
	return ret;
}

static int write_layer(struct oci_export *x, struct cairn_txn *t, const struct cairn_id *root,
		       char *diff_id)
{
	int ret = blob_begin(x, &x->layer);

	if (ret)
		return ret;
	sha256_init(&x->diff);
	ret = export_tar(t, root, tar_in, x);
	if (!ret && x->gz && archive_write_close(x->gz) != ARCHIVE_OK)
		ret = cairn_err(-EIO, "cannot finish gzip: %s", archive_error_string(x->gz));
	if (!ret)
		ret = blob_finish(&x->layer);
	if (ret)
		blob_abort(&x->layer);
	oci_digest_finish(&x->diff, diff_id);
	return ret;
}

/* --- documents ---------------------------------------------------------- */

/* The machine's architecture as OCI (Go) names it, into u->machine's storage. */
static const char *go_arch(struct utsname *u)
{
	static const struct {
		const char *uname, *go;
	} map[] = {
		{ "x86_64", "amd64" }, { "aarch64", "arm64" }, { "i686", "386" },
		{ "i386", "386" }, { "armv7l", "arm" }, { "ppc64le", "ppc64le" },
		{ "s390x", "s390x" }, { "riscv64", "riscv64" }, { "mips64", "mips64" },
	};
	if (uname(u) < 0)
		return "unknown";
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(u->machine, map[i].uname))
			return map[i].go;
	return u->machine;
}

static struct json_object *desc_new(const char *media_type, const struct blob *b)
{
	struct json_object *d = json_object_new_object();

	if (!d)
		return NULL;
	json_object_object_add(d, "mediaType", json_object_new_string(media_type));
	json_object_object_add(d, "digest", json_object_new_string(b->digest));
	json_object_object_add(d, "size", json_object_new_int64((int64_t)b->size));
	return d;
}

static const char *json_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						    JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int write_config(struct oci_export *x, const struct cairn_image *img, const char *diff_id,
			struct blob *b)
{
	struct json_object *c = json_object_new_object(), *rootfs = json_object_new_object();
	struct json_object *diffs = json_object_new_array(), *hist = json_object_new_array();
	struct json_object *h = json_object_new_object();
	struct utsname u;
	char created[40];
	time_t sec = (time_t)(img->created_ns / 1000000000);
	struct tm tm;
	int ret;

	if (!c || !rootfs || !diffs || !hist || !h) {
		json_object_put(c);
		json_object_put(rootfs);
		json_object_put(diffs);
		json_object_put(hist);
		json_object_put(h);
		return -ENOMEM;
	}
	gmtime_r(&sec, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(c, "created", json_object_new_string(created));
	json_object_object_add(c, "architecture", json_object_new_string(go_arch(&u)));
	json_object_object_add(c, "os", json_object_new_string("linux"));
	json_object_object_add(c, "config", json_object_new_object());
	json_object_array_add(diffs, json_object_new_string(diff_id));
	json_object_object_add(rootfs, "type", json_object_new_string("layers"));
	json_object_object_add(rootfs, "diff_ids", diffs);
	json_object_object_add(c, "rootfs", rootfs);
	json_object_object_add(h, "created", json_object_new_string(created));
	json_object_object_add(h, "created_by", json_object_new_string("cairn export"));
	json_object_array_add(hist, h);
	json_object_object_add(c, "history", hist);
	ret = blob_put(x, json_text(c), strlen(json_text(c)), b);
	json_object_put(c);
	return ret;
}

static int write_manifest(struct oci_export *x, const struct blob *config, struct blob *b)
{
	struct json_object *m = json_object_new_object(), *layers = json_object_new_array();
	int ret;

	if (!m || !layers) {
		json_object_put(m);
		json_object_put(layers);
		return -ENOMEM;
	}
	json_object_object_add(m, "schemaVersion", json_object_new_int(2));
	json_object_object_add(m, "mediaType", json_object_new_string(OCI_MT_MANIFEST));
	json_object_object_add(m, "config", desc_new(OCI_MT_CONFIG, config));
	json_object_array_add(layers, desc_new(x->gz ? OCI_MT_LAYER_GZIP : OCI_MT_LAYER,
					       &x->layer));
	json_object_object_add(m, "layers", layers);
	ret = blob_put(x, json_text(m), strlen(json_text(m)), b);
	json_object_put(m);
	return ret;
}

/* --- the layout --------------------------------------------------------- */

/* Reads a small JSON file of the layout; NULL with *err 0 when it is absent. */
static struct json_object *read_json(struct oci_export *x, const char *name, int *err)
{
	cleanup_free char *buf = malloc(OCI_JSON_MAX + 1);
	cleanup_fd int fd = openat(x->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct json_object *o;
	size_t len = 0;
	ssize_t n = 0;

	*err = 0;
	if (fd < 0) {
		if (errno != ENOENT)
			*err = sys_err(errno, "open", name);
		return NULL;
	}
	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	while (len <= OCI_JSON_MAX && (n = read(fd, buf + len, OCI_JSON_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0) {
		*err = sys_err(errno, "read", name);
		return NULL;
	}
	if (len > OCI_JSON_MAX) {
		*err = cairn_err(-EFBIG, "%s is larger than %u bytes", name, OCI_JSON_MAX);
		return NULL;
	}
	o = oci_json_parse(buf, len, name);
	if (!o)
		*err = -EINVAL;
	return o;
}

/* Writes a file of the layout under a temporary name, synced, then renames it. */
static int put_file(struct oci_export *x, const char *name, const char *text)
{
	char tmp[64];
	size_t len = strlen(text), done = 0;
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), ".%s.cairn-tmp-%d", name, (int)getpid());
	fd = openat(x->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return sys_err(errno, "create", tmp);
	while (!ret && done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ret = sys_err(n < 0 ? errno : EIO, "write", tmp);
		else
			done += (size_t)n;
	}
	if (!ret && fsync(fd) < 0)
		ret = sys_err(errno, "sync", tmp);
	close(fd);
	if (!ret && renameat(x->dirfd, tmp, x->dirfd, name) < 0)
		ret = sys_err(errno, "rename", tmp);
	if (ret)
		unlinkat(x->dirfd, tmp, 0);
	return ret;
}

/* Opens (making what is missing) the layout: oci-layout, blobs/sha256. */
static int open_layout(struct oci_export *x)
{
	struct json_object *l, *v;
	int err;

	if (mkdir(x->dir, 0755) == 0)
		x->created = true;
	else if (errno != EEXIST)
		return sys_err(errno, "create", x->dir);
	x->dirfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dirfd < 0)
		return sys_err(errno, "open", x->dir);
	l = read_json(x, "oci-layout", &err);
	if (err)
		return err;
	if (l) {
		v = json_object_object_get_ex(l, "imageLayoutVersion", &v) ? v : NULL;
		err = v && json_object_is_type(v, json_type_string) &&
				      !strcmp(json_object_get_string(v), OCI_LAYOUT_VERSION)
			      ? 0
			      : cairn_err(-ENOTSUP, "oci-layout is not version %s",
					  OCI_LAYOUT_VERSION);
		json_object_put(l);
		if (err)
			return err;
	} else {
		DIR *d = fdopendir(dup(x->dirfd));
		struct dirent *de;
		bool empty = true;

		if (!d)
			return sys_err(errno, "read", x->dir);
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty = false;
		closedir(d);
		if (!empty)
			return cairn_err(-EEXIST, "it is not empty and not an OCI layout (no "
						  "oci-layout file)");
		err = put_file(x, "oci-layout", "{\"imageLayoutVersion\":\"" OCI_LAYOUT_VERSION
						"\"}");
		if (err)
			return err;
	}
	if (mkdirat(x->dirfd, "blobs", 0755) < 0 && errno != EEXIST)
		return sys_err(errno, "create", "blobs");
	if (mkdirat(x->dirfd, "blobs/sha256", 0755) < 0 && errno != EEXIST)
		return sys_err(errno, "create", "blobs/sha256");
	x->blobfd = openat(x->dirfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->blobfd < 0)
		return sys_err(errno, "open", "blobs/sha256");
	return 0;
}

/* index.json with the new manifest named ref, others kept. */
static int update_index(struct oci_export *x, const struct blob *manifest, const char *ref)
{
	struct json_object *idx, *old = NULL, *list, *d, *ann;
	int err;

	idx = read_json(x, "index.json", &err);
	if (err)
		return err;
	if (idx) {
		struct json_object *sv;

		if (!json_object_object_get_ex(idx, "schemaVersion", &sv) ||
		    json_object_get_int(sv) != 2 ||
		    !json_object_object_get_ex(idx, "manifests", &old) ||
		    !json_object_is_type(old, json_type_array)) {
			json_object_put(idx);
			return cairn_err(-EINVAL, "index.json is not an OCI index (schemaVersion 2, "
						  "a manifests array)");
		}
	} else {
		idx = json_object_new_object();
		if (!idx)
			return -ENOMEM;
		json_object_object_add(idx, "schemaVersion", json_object_new_int(2));
	}
	list = json_object_new_array();
	d = desc_new(OCI_MT_MANIFEST, manifest);
	ann = json_object_new_object();
	if (!list || !d || !ann) {
		json_object_put(list);
		json_object_put(d);
		json_object_put(ann);
		json_object_put(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; old && i < json_object_array_length(old); i++) {
		struct json_object *e = json_object_array_get_idx(old, i), *a, *r;

		if (json_object_object_get_ex(e, "annotations", &a) &&
		    json_object_object_get_ex(a, OCI_REF_ANNOTATION, &r) &&
		    json_object_is_type(r, json_type_string) &&
		    !strcmp(json_object_get_string(r), ref))
			continue; /* replaced */
		json_object_array_add(list, json_object_get(e));
	}
	json_object_object_add(ann, OCI_REF_ANNOTATION, json_object_new_string(ref));
	json_object_object_add(d, "annotations", ann);
	json_object_array_add(list, d);
	json_object_object_add(idx, "manifests", list);
	if (fsync(x->blobfd) < 0) /* the blobs' names are durable before anything names them */
		err = sys_err(errno, "sync", "blobs/sha256");
	if (!err)
		err = put_file(x, "index.json", json_text(idx));
	if (!err && fsync(x->dirfd) < 0)
		err = sys_err(errno, "sync", x->dir);
	json_object_put(idx);
	return err;
}

/* Takes a layout this export created away again. */
static void remove_layout(struct oci_export *x, const struct blob *const *blobs, size_t n)
{
	char name[OCI_DIGEST_LEN];

	for (size_t i = 0; x->blobfd >= 0 && i < n; i++) {
		if (!blobs[i]->digest[0])
			continue;
		snprintf(name, sizeof(name), "%s", blobs[i]->digest + 7);
		unlinkat(x->blobfd, name, 0);
	}
	unlinkat(x->dirfd, "blobs/sha256", AT_REMOVEDIR);
	unlinkat(x->dirfd, "blobs", AT_REMOVEDIR);
	unlinkat(x->dirfd, "oci-layout", 0);
	rmdir(x->dir);
}

int export_oci(struct cairn_txn *t, const struct cairn_image *img, const char *dir,
	       const char *ref, bool plain)
{
	struct oci_export x = { .dir = dir, .dirfd = -1, .blobfd = -1, .layer.fd = -1 };
	struct blob config = { .fd = -1 }, manifest = { .fd = -1 };
	char diff_id[OCI_DIGEST_LEN + 1];
	int ret;

	ret = open_layout(&x);
	if (!ret && !plain)
		ret = gz_start(&x);
	if (!ret)
		ret = write_layer(&x, t, &img->root, diff_id);
	if (!ret)
		ret = write_config(&x, img, diff_id, &config);
	if (!ret)
		ret = write_manifest(&x, &config, &manifest);
	if (!ret)
		ret = update_index(&x, &manifest, ref);
	if (x.gz) {
		/*
		 * no trailer into a failed blob, but a close all the same: only
		 * the close ends zlib's stream (archive_write_fail() would leak it)
		 */
		x.failed = ret != 0;
		archive_write_free(x.gz);
	}
	if (ret && x.created) {
		const struct blob *blobs[] = { &x.layer, &config, &manifest };

		remove_layout(&x, blobs, ARRAY_SIZE(blobs));
	}
	if (x.blobfd >= 0)
		close(x.blobfd);
	if (x.dirfd >= 0)
		close(x.dirfd);
	return ret;
}
