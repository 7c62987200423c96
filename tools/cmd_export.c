/* SPDX-License-Identifier: MIT */
/*
 * cmd_export.c - cairn export: an image's flattened tree as a pax tar.
 *
 * The tree is written depth first in directory order (names sorted by
 * bytes), the order in which the importer names hard-link groups, so the
 * first member of a group met here is the one the others link to. Paths
 * are written as bytes (pax hdrcharset=BINARY): names are not text, and
 * the tar must not depend on the locale it was made in.
 *
 * Sparse files: the data extents go into the pax header as a GNU sparse
 * map, so holes (which may be GiBs) take no space in the tar. libarchive
 * still wants the whole logical stream through archive_write_data() (it
 * drops the bytes of holes itself), and it mishandles a write that spans a
 * data/hole boundary, so every write here stays within one extent.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cli.h"
#include "export.h"
#include "oci.h"
#include "read.h"
#include "walk.h"

#define EXPORT_BUF (1u << 20)

/* Shown by 'cairn export --help'. */
extern const char cmd_export_help[];
const char cmd_export_help[] =
	"Writes the image's flattened tree as a POSIX pax tar archive to FILE, or to\n"
	"stdout (never to a terminal). With -o, the archive is written to a temporary\n"
	"file beside FILE and renamed into place once complete, so a failed export\n"
	"leaves nothing behind.\n"
	"\n"
	"Every entry keeps its mode, numeric uid and gid (no user or group names),\n"
	"mtime with nanoseconds, xattrs (pax LIBARCHIVE.xattr/SCHILY.xattr records)\n"
	"and POSIX ACLs (as pax SCHILY.acl records, restored by 'bsdtar --acls').\n"
	"Hard links become hard-link entries to their group's first path; sparse\n"
	"files keep their holes (GNU sparse 1.0 in pax). Paths are relative and\n"
	"written as raw bytes.\n"
	"\n"
	"The root directory's own attributes are the first entry, './' (as GNU tar\n"
	"writes it), so importing the archive gives the same image id. Not in the\n"
	"archive: sockets, which tar cannot hold (each one skipped is named in a\n"
	"warning on stderr). An image holding a name that starts '.wh.' is refused\n"
	"(tar and OCI readers take it for a whiteout), with the path named.\n"
	"\n"
	"Extract with: bsdtar -xpf FILE --acls --xattrs --numeric-owner -C DIR\n"
	"\n"
	"--oci DIR[:REF] adds the image to the OCI image layout in DIR (made if\n"
	"missing) as one layer holding this tar, gzip compressed (--uncompressed:\n"
	"plain), a config (rootfs.diff_ids, this machine's architecture) and a\n"
	"manifest that index.json names REF\n"
	"(default: IMAGE as typed). A manifest of that name is replaced, the others\n"
	"kept. Blobs and index.json are renamed into place once complete and synced.\n"
	"Read it with 'umoci unpack --image DIR:REF' or 'skopeo copy oci:DIR:REF ...'.\n";

/*
 * Where the archive goes. Once the export has failed, the sink refuses
 * every write: closing the archive then frees libarchive's buffers without
 * appending the end-of-archive blocks, which would make a truncated tar on
 * stdout look complete.
 */
struct sink {
	int fd;
	export_write_fn fn; /* instead of fd, when set */
	void *ctx;
	bool failed;
};

struct export {
	struct cairn_txn *t;
	struct sink sink;
	struct archive *a;
	struct archive_entry *e;
	struct cairn_reader r;
	uint8_t *buf;   /* EXPORT_BUF bytes of file data */
	uint8_t *zeros; /* EXPORT_BUF zero bytes, fed for holes */
	struct cairn_buf path; /* relative path of the current entry, NUL-terminated */
	struct cairn_objmap links; /* link key -> aux: index into link_paths */
	char **link_paths;
	size_t nlinks, links_cap;
	unsigned long long sockets;
};

/* The current path, escaped for a message (malloc'ed; "" on failure). */
static char *path_for_msg(const struct export *x)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	cli_print_escaped(f, (const char *)x->path.data, x->path.len ? x->path.len - 1 : 0);
	fclose(f);
	return s;
}

static int __attribute__((format(printf, 3, 4)))
entry_err(const struct export *x, int ret, const char *fmt, ...)
{
	cleanup_free char *p = path_for_msg(x);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cairn_err(ret, "'%s': %s", p ? p : "", msg);
}

/* The library's message for ret, or the errno text. */
static const char *why(int ret, char *buf, size_t len)
{
	const char *m = cairn_errmsg();

	return *m ? m : cairn_strerror(-ret, buf, len);
}

static int archive_err(const struct export *x, const char *what)
{
	const char *m = archive_error_string(x->a);
	int e = archive_errno(x->a);

	return entry_err(x, e > 0 ? -e : -EIO, "%s: %s", what, m ? m : "libarchive failed");
}

/* --- attributes --------------------------------------------------------- */

/* The kernel's POSIX ACL xattr: u32 version 2, then {u16 tag, u16 perm, u32 id}. */
#define ACL_XATTR_VERSION 2u

static int acl_tag(uint16_t tag)
{
	switch (tag) {
	case 0x01:
		return ARCHIVE_ENTRY_ACL_USER_OBJ;
	case 0x02:
		return ARCHIVE_ENTRY_ACL_USER;
	case 0x04:
		return ARCHIVE_ENTRY_ACL_GROUP_OBJ;
	case 0x08:
		return ARCHIVE_ENTRY_ACL_GROUP;
	case 0x10:
		return ARCHIVE_ENTRY_ACL_MASK;
	case 0x20:
		return ARCHIVE_ENTRY_ACL_OTHER;
	default:
		return 0;
	}
}

/*
 * Adds an ACL from its xattr value. The entry's mode must be set first:
 * libarchive keeps an access ACL's owner, group and other entries in the
 * mode bits, as bsdtar itself does when it reads a file from disk.
 */
static int add_acl(struct export *x, int type, const struct cairn_xattr *xa)
{
	const uint8_t *p = xa->value;
	size_t len = xa->value_len;

	if (len < 4 || (len - 4) % 8 || cairn_le32(p) != ACL_XATTR_VERSION)
		return entry_err(x, -EUCLEAN, "malformed ACL in xattr '%.*s'", (int)xa->name_len,
				 xa->name);
	for (size_t off = 4; off < len; off += 8) {
		uint16_t tag = cairn_le16(p + off), perm = cairn_le16(p + off + 2);
		uint32_t id = cairn_le32(p + off + 4);
		int atag = acl_tag(tag), permset = 0;
		bool qualified = atag == ARCHIVE_ENTRY_ACL_USER || atag == ARCHIVE_ENTRY_ACL_GROUP;

		if (!atag || (perm & ~7u))
			return entry_err(x, -EUCLEAN, "malformed ACL in xattr '%.*s'",
					 (int)xa->name_len, xa->name);
		if (perm & 4)
			permset |= ARCHIVE_ENTRY_ACL_READ;
		if (perm & 2)
			permset |= ARCHIVE_ENTRY_ACL_WRITE;
		if (perm & 1)
			permset |= ARCHIVE_ENTRY_ACL_EXECUTE;
		if (archive_entry_acl_add_entry(x->e, type, permset, atag,
						qualified ? (int)id : -1, NULL) != ARCHIVE_OK)
			return entry_err(x, -EUCLEAN, "libarchive refuses an entry of ACL '%.*s'",
					 (int)xa->name_len, xa->name);
	}
	return 0;
}

static bool xattr_is(const struct cairn_xattr *xa, const char *name)
{
	return xa->name_len == strlen(name) && memcmp(xa->name, name, xa->name_len) == 0;
}

static int add_xattrs(struct export *x, const struct cairn_node_view *v)
{
	struct cairn_xattr xa;
	size_t off = 0;
	int ret;

	while ((ret = cairn_xattr_next(v, &off, &xa)) == 0) {
		char name[CAIRN_XATTR_NAME_MAX + 1];

		if (xattr_is(&xa, "system.posix_acl_access"))
			ret = add_acl(x, ARCHIVE_ENTRY_ACL_TYPE_ACCESS, &xa);
		else if (xattr_is(&xa, "system.posix_acl_default"))
			ret = add_acl(x, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, &xa);
		else if (xa.name_len > CAIRN_XATTR_NAME_MAX || memchr(xa.name, '\0', xa.name_len))
			ret = entry_err(x, -EUCLEAN, "malformed xattr name");
		else {
			memcpy(name, xa.name, xa.name_len);
			name[xa.name_len] = '\0';
			archive_entry_xattr_add_entry(x->e, name, xa.value, xa.value_len);
		}
		if (ret)
			return ret;
	}
	return ret == -ENOENT ? 0 : entry_err(x, ret, "damaged xattrs");
}

/* --- file data ---------------------------------------------------------- */

/* Declares the data extents of a file with holes (before the header). */
static void add_sparse_map(struct export *x, const struct cairn_content_view *cv)
{
	bool holes = false, data = false;

	for (uint32_t i = 0; i < cv->count; i++) {
		struct cairn_extent e;

		cairn_content_extent(cv, i, &e);
		holes |= e.hole;
	}
	if (!holes)
		return;
	for (uint32_t i = 0; i < cv->count; i++) {
		struct cairn_extent e;

		cairn_content_extent(cv, i, &e);
		if (e.hole)
			continue;
		/* adjacent extents merge into one sparse entry */
		archive_entry_sparse_add_entry(x->e, (la_int64_t)e.start,
					       (la_int64_t)(e.end - e.start));
		data = true;
	}
	if (!data) /* all hole: an empty data block at the end marks it sparse */
		archive_entry_sparse_add_entry(x->e, (la_int64_t)cv->size, 0);
}

static int write_data(struct export *x, const struct cairn_content_view *cv)
{
	for (uint32_t i = 0; i < cv->count; i++) {
		struct cairn_extent e;

		cairn_content_extent(cv, i, &e);
		for (uint64_t pos = e.start; pos < e.end;) {
			size_t n = e.end - pos < EXPORT_BUF ? (size_t)(e.end - pos) : EXPORT_BUF;
			const void *data = x->zeros;
			la_ssize_t w;

			if (!e.hole) {
				ssize_t got = cairn_reader_pread(&x->r, cv, x->buf, n, pos);

				if (got < 0) {
					char eb[128];

					return entry_err(x, (int)got, "%s", why((int)got, eb, sizeof(eb)));
				}
				if ((size_t)got != n)
					return entry_err(x, -EIO, "short read at offset %llu",
							 (unsigned long long)pos);
				data = x->buf;
			}
			w = archive_write_data(x->a, data, n);
			if (w < 0)
				return archive_err(x, "cannot write file data");
			if ((size_t)w != n)
				return entry_err(x, -EIO, "libarchive took %zd of %zu bytes", w, n);
			pos += n;
		}
	}
	return 0;
}

/* --- entries ------------------------------------------------------------ */

/* The first member of a hard-link group records its path; later ones link to it. */
static int link_lookup(struct export *x, const struct cairn_node_view *v, const char **first)
{
	struct cairn_obj *o;
	bool added;
	int ret;

	*first = NULL;
	ret = cairn_objmap_add(&x->links, CAIRN_OBJ_USER, &v->link_key, &o, &added);
	if (ret)
		return ret;
	if (!added) {
		*first = x->link_paths[o->aux];
		return 0;
	}
	if (x->nlinks == x->links_cap) {
		size_t ncap = x->links_cap ? x->links_cap * 2 : 64;
		char **n = realloc(x->link_paths, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		x->link_paths = n;
		x->links_cap = ncap;
	}
	x->link_paths[x->nlinks] = strdup((const char *)x->path.data);
	if (!x->link_paths[x->nlinks])
		return -ENOMEM;
	o->aux = (uint32_t)x->nlinks++;
	return 0;
}

static int export_entry(struct export *x, const struct cairn_node_view *v)
{
	struct cairn_content_view cv = { 0 };
	const char *first = NULL;
	int ret;

	if (v->type == CAIRN_NODE_SOCK) {
		fputs("cairn: warning: skipping socket '", stderr);
		cli_print_escaped(stderr, (const char *)x->path.data, x->path.len - 1);
		fputs("': tar cannot hold sockets\n", stderr);
		x->sockets++;
		return 0;
	}
	if (v->type == CAIRN_NODE_WHITEOUT)
		return entry_err(x, -EUCLEAN, "a whiteout in a flattened tree");
	if (v->nlink > 1 && v->type != CAIRN_NODE_DIR && (ret = link_lookup(x, v, &first)))
		return ret;

	archive_entry_clear(x->e);
	archive_entry_copy_pathname(x->e, (const char *)x->path.data);
	archive_entry_set_mode(x->e, cairn_node_st_mode(v));
	archive_entry_set_uid(x->e, v->uid);
	archive_entry_set_gid(x->e, v->gid);
	/* libarchive's own convention, which bsdtar restores exactly: seconds
	 * rounded down, nanoseconds in [0, 1e9), also before 1970 */
	archive_entry_set_mtime(x->e, (time_t)v->mtime_sec, (long)v->mtime_nsec);
	if (first) {
		archive_entry_copy_hardlink(x->e, first);
		archive_entry_set_size(x->e, 0);
		if (archive_write_header(x->a, x->e) < ARCHIVE_WARN)
			return archive_err(x, "cannot write a hard-link entry");
		return 0;
	}
	switch (v->type) {
	case CAIRN_NODE_REG:
		ret = cairn_file_content(x->t, v, CAIRN_PARSE_STRICT, &cv);
		if (ret) {
			char eb[128];

			return entry_err(x, ret, "%s", why(ret, eb, sizeof(eb)));
		}
		archive_entry_set_size(x->e, (la_int64_t)v->size);
		add_sparse_map(x, &cv);
		break;
	case CAIRN_NODE_LNK: {
		char target[CAIRN_SYMLINK_MAX + 1];

		memcpy(target, v->target, v->target_len);
		target[v->target_len] = '\0';
		archive_entry_copy_symlink(x->e, target);
		break;
	}
	case CAIRN_NODE_CHR:
	case CAIRN_NODE_BLK:
		archive_entry_set_rdev(x->e, makedev(v->major, v->minor));
		break;
	default:
		break;
	}
	ret = add_xattrs(x, v);
	if (ret)
		return ret;
	if (archive_write_header(x->a, x->e) < ARCHIVE_WARN)
		return archive_err(x, "cannot write an entry");
	if (v->type == CAIRN_NODE_REG)
		return write_data(x, &cv);
	return 0;
}

static int export_dir(struct export *x, const struct cairn_node_view *dir, unsigned depth)
{
	if (depth > CAIRN_DEPTH_MAX)
		return cairn_err_too_deep(x->path.len ? (const char *)x->path.data : NULL);
	for (uint32_t i = 0; i < dir->nentries; i++) {
		struct cairn_node_view v;
		struct cairn_dirent d;
		size_t old = x->path.len ? x->path.len - 1 : 0; /* without the NUL */
		int ret;

		ret = cairn_dir_entry(dir, i, &d);
		if (ret)
			return entry_err(x, ret, "a damaged directory");
		x->path.len = old;
		if ((old && (ret = cairn_buf_append(&x->path, "/", 1))) ||
		    (ret = cairn_buf_append(&x->path, d.name, d.name_len)) ||
		    (ret = cairn_buf_append(&x->path, "", 1)))
			return ret;
		/* every tar and OCI reader takes such a name for a whiteout */
		if (d.name_len >= 4 && !memcmp(d.name, ".wh.", 4))
			return entry_err(x, -EINVAL, "a name starting '.wh.' reads as a whiteout in "
						     "tar and OCI layers; rename or remove it first");
		ret = cairn_node_get(x->t, &d.id, CAIRN_PARSE_STRICT, &v);
		if (ret) {
			char eb[128];

			return entry_err(x, ret, "%s", why(ret, eb, sizeof(eb)));
		}
		ret = export_entry(x, &v);
		if (!ret && v.type == CAIRN_NODE_DIR)
			ret = export_dir(x, &v, depth + 1);
		if (ret)
			return ret;
		x->path.len = old;
		if ((ret = cairn_buf_append(&x->path, "", 1)))
			return ret;
	}
	return 0;
}

/* --- output ------------------------------------------------------------- */

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct sink *k = ctx;
	size_t done = 0;

	if (k->failed) {
		archive_set_error(a, ECANCELED, "the export failed");
		return -1;
	}
	if (k->fn) {
		int ret = k->fn(k->ctx, buf, len);

		if (ret) {
			archive_set_error(a, -ret, "%s", cairn_errmsg());
			return -1;
		}
		return (la_ssize_t)len;
	}
	while (done < len) {
		ssize_t n = write(k->fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			archive_set_error(a, e, "%s", strerror(e));
			return -1;
		}
		done += (size_t)n;
	}
	return (la_ssize_t)len;
}

struct output {
	const char *file; /* NULL: stdout */
	char *tmp;        /* FILE.tmp.XXXXXX while writing */
	int fd;
};

static int output_open(struct output *o)
{
	mode_t mask;

	o->fd = -1;
	if (!o->file) {
		if (isatty(STDOUT_FILENO))
			return cairn_err(-EINVAL, "refusing to write a tar archive to a terminal; "
						  "use -o FILE or redirect stdout");
		o->fd = STDOUT_FILENO;
		return 0;
	}
	if (asprintf(&o->tmp, "%s.tmp.XXXXXX", o->file) < 0) {
		o->tmp = NULL;
		return -ENOMEM;
	}
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0) {
		int e = errno;

		free(o->tmp);
		o->tmp = NULL;
		return cairn_err(-e, "cannot create a file beside '%s': %s", o->file, strerror(e));
	}
	/* mkstemp makes 0600; a tar written by a shell redirection is 0666 & ~umask */
	mask = umask(0);
	umask(mask);
	if (fchmod(o->fd, 0666 & ~mask))
		return cairn_err(-errno, "cannot set the mode of '%s'", o->tmp);
	return 0;
}

/* Makes a complete FILE.tmp durable and renames it into place. */
static int output_commit(struct output *o)
{
	cleanup_free char *dir = NULL;
	int fd, e;

	if (!o->file)
		return 0;
	if (fsync(o->fd) || close(o->fd)) {
		e = errno;
		o->fd = -1;
		return cairn_err(-e, "cannot write '%s': %s", o->tmp, strerror(e));
	}
	o->fd = -1;
	if (rename(o->tmp, o->file)) {
		e = errno;
		return cairn_err(-e, "cannot rename '%s' to '%s': %s", o->tmp, o->file,
				 strerror(e));
	}
	free(o->tmp);
	o->tmp = NULL;
	dir = strdup(o->file);
	if (dir) {
		fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	return 0;
}

/* Removes what a failed export left. */
static void output_abort(struct output *o)
{
	if (o->file && o->fd >= 0)
		close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	o->tmp = NULL;
	o->fd = -1;
}

/* --- the command -------------------------------------------------------- */

/*
 * The root's own attributes go first, as a "./" entry (as GNU tar writes
 * it), so an import of the archive gives the same image id.
 */
static int export_tree(struct export *x, const struct cairn_id *root, int fd)
{
	struct cairn_node_view v;
	struct cairn_id id;
	int ret;

	ret = cairn_path_walk(x->t, root, "", &id, &v);
	if (ret)
		return ret;
	if (v.type != CAIRN_NODE_DIR)
		return cairn_err(-EUCLEAN, "the image's root is not a directory");
	x->sink.fd = fd;
	x->a = archive_write_new();
	x->e = archive_entry_new();
	x->buf = malloc(EXPORT_BUF);
	x->zeros = calloc(1, EXPORT_BUF);
	if (!x->a || !x->e || !x->buf || !x->zeros)
		return -ENOMEM;
	if (archive_write_set_format_pax(x->a) != ARCHIVE_OK ||
	    archive_write_set_option(x->a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
	    /* the same bytes to a file or a pipe: no padding of the last block */
	    archive_write_set_bytes_in_last_block(x->a, 1) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(x->a, 128 * 1024) != ARCHIVE_OK ||
	    archive_write_open2(x->a, &x->sink, NULL, sink_write, NULL, NULL) != ARCHIVE_OK)
		return cairn_err(-EIO, "cannot start the archive: %s",
				 archive_error_string(x->a));
	ret = cairn_reader_init(&x->r, x->t);
	if (ret)
		return ret;
	ret = cairn_buf_append(&x->path, "./", 3);
	if (!ret)
		ret = export_entry(x, &v);
	if (ret)
		return ret;
	x->path.len = 0;
	ret = cairn_buf_append(&x->path, "", 1);
	if (ret)
		return ret;
	ret = export_dir(x, &v, 1);
	if (ret)
		return ret;
	if (archive_write_close(x->a) != ARCHIVE_OK)
		return cairn_err(-EIO, "cannot finish the archive: %s",
				 archive_error_string(x->a));
	return 0;
}

static void export_release(struct export *x, bool failed)
{
	if (x->a) {
		if (failed) {
			x->sink.failed = true;
			archive_write_close(x->a); /* frees its buffers, writes nothing */
		}
		archive_write_free(x->a);
	}
	archive_entry_free(x->e);
	cairn_reader_release(&x->r);
	for (size_t i = 0; i < x->nlinks; i++)
		free(x->link_paths[i]);
	free(x->link_paths);
	cairn_objmap_release(&x->links);
	cairn_buf_release(&x->path);
	free(x->buf);
	free(x->zeros);
}

int export_tar(struct cairn_txn *t, const struct cairn_id *root, export_write_fn fn, void *ctx)
{
	struct export x = { .t = t };
	int ret;

	cairn_objmap_init(&x.links);
	x.sink.fn = fn;
	x.sink.ctx = ctx;
	ret = export_tree(&x, root, -1);
	export_release(&x, ret != 0);
	return ret;
}

int cmd_export(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "oci", required_argument, NULL, 'O' },
		{ "uncompressed", no_argument, NULL, 'u' },
		{ 0 },
	};
	struct output out = { .fd = -1 };
	struct export x = { 0 };
	struct cairn_store *s;
	struct cairn_image img;
	struct cairn_id image;
	const char *path, *oci = NULL, *ref = NULL;
	cleanup_free char *oci_dir = NULL;
	bool have_o = false, plain = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			out.file = strcmp(optarg, "-") == 0 ? NULL : optarg;
			have_o = true;
			break;
		case 'O':
			oci = optarg;
			break;
		case 'u':
			plain = true;
			break;
		default:
			return cli_usage("export", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cli_usage("export", "export takes one IMAGE");
	if (out.file && !*out.file)
		return cli_usage("export", "-o needs a file name");
	if (oci && have_o)
		return cli_usage("export", "-o writes a tar, --oci a layout: one or the other");
	if (plain && !oci)
		return cli_usage("export", "--uncompressed is for --oci");
	if (oci) {
		const char *colon = strchr(oci, ':');

		oci_dir = strndup(oci, colon ? (size_t)(colon - oci) : strlen(oci));
		if (!oci_dir)
			return cli_fail(-ENOMEM, "cannot export '%s'", argv[optind]);
		ref = colon ? colon + 1 : argv[optind];
		if (!*oci_dir)
			return cli_usage("export", "--oci takes DIR or DIR:REF");
		if (!oci_ref_valid(ref))
			return cli_usage("export", "'%s' is not an OCI reference name (letters and "
						   "digits joined by one of -._:@+ or '/')%s", ref,
					 colon ? "" : "; name it with --oci DIR:REF");
	}
	if (cli_open(cli, false, &s))
		return 1;
	cairn_objmap_init(&x.links);
	ret = cairn_txn_begin(s, false, &x.t);
	if (ret) {
		cairn_store_close(s);
		return cli_fail(ret, "cannot read the store");
	}
	ret = cli_resolve(x.t, argv[optind], &image, &path);
	if (!ret && *path)
		ret = cairn_err(-EINVAL, "export takes an image, not a path inside one");
	if (!ret)
		ret = cairn_image_get(x.t, &image, &img);
	if (!ret && oci) {
		ret = export_oci(x.t, &img, oci_dir, ref, plain);
		if (ret)
			ret = cli_fail(ret, "cannot export '%s' to '%s'", argv[optind], oci_dir);
		cairn_txn_abort(x.t);
		cairn_store_close(s);
		return ret;
	}
	if (!ret)
		ret = output_open(&out);
	if (!ret)
		ret = export_tree(&x, &img.root, out.fd);
	export_release(&x, ret != 0);
	if (!ret)
		ret = output_commit(&out);
	if (ret) {
		output_abort(&out);
		ret = cli_fail(ret, "cannot export '%s'", argv[optind]);
	}
	cairn_txn_abort(x.t);
	cairn_store_close(s);
	return ret;
}
