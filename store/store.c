/* SPDX-License-Identifier: MIT */
/*
 * store.c - the LMDB environment and the one adapter for LMDB's errors.
 *
 * Every LMDB return code is translated in lmdb_err(): MDB_NOTFOUND to
 * -ENOENT, MDB_MAP_FULL to -ENOSPC, MDB_KEYEXIST to -EEXIST, the rest to
 * -EIO or the errno LMDB passed through, with LMDB's message kept for the
 * person reading the error. Nothing above this file sees an MDB_* code.
 */
#include "store.h"
#include "store-internal.h"

#include "lazy.h"
#include "source.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

static const char *const db_names[CAIRN_DB_COUNT] = {
	[CAIRN_DBI_META] = CAIRN_DB_META,
	[CAIRN_DBI_CHUNKS] = CAIRN_DB_CHUNKS,
	[CAIRN_DBI_CONTENTS] = CAIRN_DB_CONTENTS,
	[CAIRN_DBI_NODES] = CAIRN_DB_NODES,
	[CAIRN_DBI_LAYERS] = CAIRN_DB_LAYERS,
	[CAIRN_DBI_IMAGES] = CAIRN_DB_IMAGES,
	[CAIRN_DBI_TAGS] = CAIRN_DB_TAGS,
	[CAIRN_DBI_PLATFORMS] = CAIRN_DB_PLATFORMS,
	[CAIRN_DBI_HISTORY] = CAIRN_DB_HISTORY,
	[CAIRN_DBI_PACKS] = CAIRN_DB_PACKS,
	[CAIRN_DBI_REMOTES] = CAIRN_DB_REMOTES,
	[CAIRN_DBI_FOLLOWS] = CAIRN_DB_FOLLOWS,
	[CAIRN_DBI_LAZY] = CAIRN_DB_LAZY,
};
_Static_assert(CAIRN_DBI_REMOTES == CAIRN_DB_FIRST_ADDED, "added databases come last");

struct cairn_store {
	MDB_env *env;
	MDB_dbi dbi[CAIRN_DB_COUNT];
	unsigned absent;        /* bit i: added database i is missing (read-only store) */
	unsigned flags;
	char *dir;
	struct cairn_store_params params;
	struct cairn_chunker chunker;

	pthread_mutex_t pack_lock; /* protects the fields below */
	int *pack_fds;             /* by pack id; -1 until opened */
	struct pack_map *maps;     /* by pack id; addr NULL until mapped */
	size_t npack_fds;
	struct pack_map *retired;  /* mappings replaced by larger ones, unmapped at close */

	struct cairn_chunk_source *chunks; /* the top chunk source (source.h); set before sharing */
	struct cairn_chunk_source *lazy;   /* the lazy source (lazy.h), above the local packs */
};

/* A read-only mapping of a pack file. */
struct pack_map {
	void *addr;
	size_t len;
	struct pack_map *next; /* on the retired list */
};

struct cairn_txn {
	struct cairn_store *s;
	MDB_txn *txn;
	bool write;
};

struct cairn_cursor {
	MDB_cursor *cur;
};

/* The adapter: LMDB code -> -errno, with LMDB's message recorded. */
static int lmdb_err(int rc, const char *what)
{
	int ret;

	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		ret = -ENOSPC;
		break;
	case MDB_READERS_FULL:
		ret = -EAGAIN;
		break;
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_VERSION_MISMATCH:
		ret = -EUCLEAN;
		break;
	default:
		ret = rc > 0 ? -rc : -EIO; /* positive codes are errno values */
		break;
	}
	return cairn_err(ret, "%s: %s", what, mdb_strerror(rc));
}

void cairn_store_params_default(struct cairn_store_params *p)
{
	memset(p, 0, sizeof(*p));
	p->chunk.min = CAIRN_CHUNK_MIN_DEFAULT;
	p->chunk.avg = CAIRN_CHUNK_AVG_DEFAULT;
	p->chunk.max = CAIRN_CHUNK_MAX_DEFAULT;
	p->chunk.seed = CAIRN_GEAR_SEED_DEFAULT;
	p->zstd_level = 3;
}

static int meta_decode(const void *v, size_t len, struct cairn_store_params *p)
{
	struct cairn_meta_disk m;

	if (len < sizeof(m))
		return cairn_err(-EUCLEAN, "store metadata is truncated");
	memcpy(&m, v, sizeof(m));
	if (m.version == CAIRN_FORMAT_VERSION && CAIRN_GET(m.format) < CAIRN_STORE_FORMAT)
		return cairn_err(-EPROTO, "it was made by an older cairn (store format %u; this "
					  "cairn reads format %u only, whose ids differ): export its "
					  "images with the cairn that made it and import them into a "
					  "new store", CAIRN_GET(m.format), CAIRN_STORE_FORMAT);
	if (m.version != CAIRN_FORMAT_VERSION || CAIRN_GET(m.format) != CAIRN_STORE_FORMAT)
		return cairn_err(-EPROTO, "store format %u.%u is not supported (this cairn reads %u.%u)",
				 m.version, CAIRN_GET(m.format), CAIRN_FORMAT_VERSION,
				 CAIRN_STORE_FORMAT);
	if (m.hash_algo != CAIRN_HASH_XXH3_128)
		return cairn_err(-EPROTO, "store hash algorithm %u is not supported", m.hash_algo);
	p->chunk.min = CAIRN_GET(m.chunk_min);
	p->chunk.avg = CAIRN_GET(m.chunk_avg);
	p->chunk.max = CAIRN_GET(m.chunk_max);
	p->chunk.seed = CAIRN_GET(m.gear_seed);
	p->zstd_level = CAIRN_GET(m.zstd_level);
	if (CAIRN_GET(m.hole_block) != CAIRN_HOLE_BLOCK)
		return cairn_err(-EUCLEAN, "store metadata has a bad hole block size %u",
				 CAIRN_GET(m.hole_block));
	return 0;
}

static void meta_encode(const struct cairn_store_params *p, struct cairn_meta_disk *m)
{
	memset(m, 0, sizeof(*m));
	m->version = CAIRN_FORMAT_VERSION;
	m->hash_algo = CAIRN_HASH_XXH3_128;
	CAIRN_SET(m->format, CAIRN_STORE_FORMAT);
	CAIRN_SET(m->chunk_min, p->chunk.min);
	CAIRN_SET(m->chunk_avg, p->chunk.avg);
	CAIRN_SET(m->chunk_max, p->chunk.max);
	CAIRN_SET(m->hole_block, CAIRN_HOLE_BLOCK);
	CAIRN_SET(m->gear_seed, p->chunk.seed);
	CAIRN_SET(m->zstd_level, p->zstd_level);
	CAIRN_SET(m->created_ns, cairn_now_ns());
}

/*
 * Opens every named database, creating them and the metadata record if
 * asked. A database added after the store was made is created by any
 * writable open (in a write transaction of its own), and marked absent on a
 * read-only one.
 */
static int store_init_dbs(struct cairn_store *s, const struct cairn_store_params *params)
{
	bool create = !(s->flags & CAIRN_STORE_RDONLY) && (s->flags & CAIRN_STORE_CREATE);
	bool add = false;
	MDB_txn *txn;
	MDB_val k = { .mv_size = strlen(CAIRN_META_KEY), .mv_data = (void *)CAIRN_META_KEY };
	MDB_val v;
	int rc, ret;

again:
	rc = mdb_txn_begin(s->env, NULL, create || add ? 0 : MDB_RDONLY, &txn);
	if (rc)
		return lmdb_err(rc, "cannot begin a transaction");
	s->absent = 0;
	for (unsigned i = 0; i < CAIRN_DB_COUNT; i++) {
		bool added = i >= CAIRN_DB_FIRST_ADDED;

		rc = mdb_dbi_open(txn, db_names[i], create || (add && added) ? MDB_CREATE : 0,
				  &s->dbi[i]);
		if (rc == MDB_NOTFOUND && added && !(s->flags & CAIRN_STORE_RDONLY)) {
			mdb_txn_abort(txn);
			add = true;
			goto again;
		}
		if (rc == MDB_NOTFOUND && added) {
			s->absent |= 1u << i;
			continue;
		}
		if (rc == MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			return cairn_err(-ENOENT, "not a cairn store");
		}
		if (rc) {
			mdb_txn_abort(txn);
			return lmdb_err(rc, "cannot open a database");
		}
	}
	rc = mdb_get(txn, s->dbi[CAIRN_DBI_META], &k, &v);
	if (rc == MDB_NOTFOUND && create) {
		struct cairn_meta_disk m;
		struct cairn_store_params def;

		if (!params) {
			cairn_store_params_default(&def);
			params = &def;
		}
		meta_encode(params, &m);
		v.mv_size = sizeof(m);
		v.mv_data = &m;
		rc = mdb_put(txn, s->dbi[CAIRN_DBI_META], &k, &v, MDB_NOOVERWRITE);
		if (rc) {
			mdb_txn_abort(txn);
			return lmdb_err(rc, "cannot write the store metadata");
		}
		rc = mdb_get(txn, s->dbi[CAIRN_DBI_META], &k, &v);
	}
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return cairn_err(-ENOENT, "not a cairn store");
	}
	if (rc) {
		mdb_txn_abort(txn);
		return lmdb_err(rc, "cannot read the store metadata");
	}
	ret = meta_decode(v.mv_data, v.mv_size, &s->params);
	if (ret) {
		mdb_txn_abort(txn);
		return ret;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return lmdb_err(rc, "cannot create the store");
	ret = cairn_chunker_init(&s->chunker, &s->params.chunk);
	if (ret)
		return cairn_err(ret, "store metadata has bad chunking parameters");
	return 0;
}

/* mkdir -p: missing parents 0755, the store itself 0700. */
static int mkdir_p(const char *dir)
{
	cleanup_free char *p = strdup(dir);

	if (!p)
		return -ENOMEM;
	for (char *q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Narrows one entry of dfd to want (0700 or 0600) if it is wider; symlinks are left. */
static int perms_one(int dfd, const char *name, const char *shown, bool fix,
		     cairn_perms_fn report, void *ctx)
	__attribute__((nonnull(2, 3)));
static int perms_one(int dfd, const char *name, const char *shown, bool fix,
		     cairn_perms_fn report, void *ctx)
{
	char proc[64];
	struct stat st;
	mode_t want;
	int fd;

	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* gone meanwhile (a pack gc removed, a mount that ended) */
	if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
		close(fd);
		return 0;
	}
	want = S_ISDIR(st.st_mode) ? 0700 : 0600;
	if (!(st.st_mode & 077)) {
		close(fd);
		return 0;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fix && st.st_uid == geteuid() && chmod(proc, want & st.st_mode) == 0) {
		close(fd);
		return 0;
	}
	close(fd);
	if (report)
		report(ctx, shown, st.st_mode & 07777);
	return 1;
}

int cairn_store_perms(struct cairn_store *s, bool fix, cairn_perms_fn report, void *ctx)
{
	static const char *const subdirs[] = { "packs", "run" };
	int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), wide = 0;
	DIR *d;

	if (dfd < 0)
		return 0;
	wide += perms_one(AT_FDCWD, s->dir, s->dir, fix, report, ctx);
	d = fdopendir(dup(dfd));
	for (struct dirent *e; d && (e = readdir(d));) {
		cleanup_free char *shown = NULL;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&shown, "%s/%s", s->dir, e->d_name) < 0)
			break;
		wide += perms_one(dfd, e->d_name, shown, fix, report, ctx);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		int sfd = openat(dfd, subdirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		d = sfd >= 0 ? fdopendir(sfd) : NULL;
		if (!d && sfd >= 0)
			close(sfd);
		for (struct dirent *e; d && (e = readdir(d));) {
			cleanup_free char *shown = NULL;

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (asprintf(&shown, "%s/%s/%s", s->dir, subdirs[i], e->d_name) < 0)
				break;
			wide += perms_one(dirfd(d), e->d_name, shown, fix, report, ctx);
		}
		if (d)
			closedir(d);
	}
	close(dfd);
	return wide;
}

/* Creates and opens s->env; on failure the handle is closed and NULL. */
static int env_open(struct cairn_store *s, unsigned mdb_flags)
{
	int rc = mdb_env_create(&s->env);

	if (rc)
		return rc;
	mdb_env_set_maxdbs(s->env, 16);
	mdb_env_set_maxreaders(s->env, CAIRN_MAX_READERS);
	rc = mdb_env_set_mapsize(s->env, CAIRN_MAP_SIZE);
	/* Never MDB_WRITEMAP, MDB_NOSYNC or MDB_MAPASYNC: see DESIGN.md. */
	if (!rc)
		rc = mdb_env_open(s->env, s->dir, mdb_flags, 0600);
	if (rc) {
		mdb_env_close(s->env);
		s->env = NULL;
	}
	return rc;
}

int cairn_store_open(const char *dir, unsigned flags, const struct cairn_store_params *params,
		     struct cairn_store **out)
{
	struct cairn_store *s;
	struct stat st;
	char ebuf[128];
	int rc, ret, dead;

	if (stat(dir, &st) < 0) {
		if (errno != ENOENT || !(flags & CAIRN_STORE_CREATE) ||
		    (flags & CAIRN_STORE_RDONLY))
			return cairn_err(-errno, "%s", errno == ENOENT ? "there is no store there"
				: cairn_strerror(errno, ebuf, sizeof(ebuf)));
		ret = mkdir_p(dir);
		if (ret)
			return cairn_err(ret, "cannot create the directory: %s",
					 cairn_strerror(-ret, ebuf, sizeof(ebuf)));
	} else if (!S_ISDIR(st.st_mode)) {
		return cairn_err(-ENOTDIR, "not a directory");
	}

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->flags = flags;
	pthread_mutex_init(&s->pack_lock, NULL);
	s->dir = strdup(dir);
	if (!s->dir) {
		ret = -ENOMEM;
		goto err_free;
	}
	rc = env_open(s, MDB_NOTLS | (flags & CAIRN_STORE_RDONLY ? MDB_RDONLY : 0));
	if (rc == EROFS && !(flags & CAIRN_STORE_CREATE)) {
		/*
		 * A store on a read-only filesystem can still be read: no
		 * process can write it there, so no lock file is needed. A
		 * failed mdb_env_open() leaves the handle unusable: start over.
		 */
		s->flags |= CAIRN_STORE_RDONLY;
		rc = env_open(s, MDB_NOTLS | MDB_RDONLY | MDB_NOLOCK);
	}
	if (rc) {
		ret = lmdb_err(rc, "cannot open the store");
		ret = cairn_err(ret, "%s", mdb_strerror(rc));
		goto err_free;
	}
	if (!(s->flags & CAIRN_STORE_RDONLY))
		mdb_reader_check(s->env, &dead);
	ret = store_init_dbs(s, params);
	if (ret)
		goto err_env;
	if (!(s->flags & CAIRN_STORE_RDONLY)) {
		cleanup_free char *packs = NULL;

		if (asprintf(&packs, "%s/packs", dir) < 0) {
			ret = -ENOMEM;
			goto err_env;
		}
		if (mkdir(packs, 0700) < 0 && errno != EEXIST) {
			ret = cairn_err(-errno, "cannot create '%s': %s", packs,
					cairn_strerror(errno, ebuf, sizeof(ebuf)));
			goto err_env;
		}
	}
	s->chunks = cairn_chunks_local_new(s);
	s->lazy = s->chunks ? cairn_chunks_lazy_new(s) : NULL;
	if (!s->lazy) {
		free(s->chunks);
		ret = -ENOMEM;
		goto err_env;
	}
	cairn_store_push_chunks(s, s->lazy);
	/* the store holds other people's files: its owner narrows what is wider */
	cairn_store_perms(s, true, NULL, NULL);
	*out = s;
	return 0;

err_env:
	mdb_env_close(s->env);
err_free:
	pthread_mutex_destroy(&s->pack_lock);
	free(s->dir);
	free(s);
	return ret;
}

void cairn_store_close(struct cairn_store *s)
{
	if (!s)
		return;
	while (s->chunks) {
		struct cairn_chunk_source *below = s->chunks->below;

		if (s->chunks->ops->free)
			s->chunks->ops->free(s->chunks);
		s->chunks = below;
	}
	mdb_env_close(s->env);
	for (size_t i = 0; i < s->npack_fds; i++) {
		if (s->pack_fds[i] >= 0)
			close(s->pack_fds[i]);
		if (s->maps[i].addr)
			munmap(s->maps[i].addr, s->maps[i].len);
	}
	while (s->retired) {
		struct pack_map *m = s->retired;

		s->retired = m->next;
		munmap(m->addr, m->len);
		free(m);
	}
	free(s->pack_fds);
	free(s->maps);
	pthread_mutex_destroy(&s->pack_lock);
	free(s->dir);
	free(s);
}

void cairn_store_pack_path(const struct cairn_store *s, uint32_t pack, char *buf, size_t len)
{
	snprintf(buf, len, "%s/packs/%08x.pack", s->dir, pack);
}

/* The pack's fd, opening it on first use. Called with pack_lock held. */
static int pack_fd_locked(struct cairn_store *s, uint32_t pack)
{
	char path[4096], ebuf[128];
	int fd;

	if (pack < s->npack_fds && s->pack_fds[pack] >= 0)
		return s->pack_fds[pack];
	/*
	 * Open first: the tables grow to the pack id, and a damaged index
	 * record may name any id (one that has no file must not cost memory).
	 */
	cairn_store_pack_path(s, pack, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cairn_err(-errno, "cannot open pack '%s': %s", path,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	if (pack >= s->npack_fds) {
		size_t n = (size_t)pack + 16;
		int *p = realloc(s->pack_fds, n * sizeof(*p));
		struct pack_map *m;

		if (p)
			s->pack_fds = p;
		m = p ? realloc(s->maps, n * sizeof(*m)) : NULL;
		if (!m) {
			close(fd);
			return -ENOMEM;
		}
		s->maps = m;
		for (size_t i = s->npack_fds; i < n; i++) {
			p[i] = -1;
			memset(&m[i], 0, sizeof(m[i]));
		}
		s->npack_fds = n;
	}
	s->pack_fds[pack] = fd;
	return fd;
}

int cairn_store_pack_fd(struct cairn_store *s, uint32_t pack)
{
	int fd;

	pthread_mutex_lock(&s->pack_lock);
	fd = pack_fd_locked(s, pack);
	pthread_mutex_unlock(&s->pack_lock);
	return fd;
}

const void *cairn_store_pack_map(struct cairn_store *s, uint32_t pack, uint64_t off, size_t len,
				 int *err)
{
	struct pack_map *m;
	struct stat st;
	void *addr;
	int fd;

	pthread_mutex_lock(&s->pack_lock);
	/* off comes from an index record, maybe a damaged one: no wrapping sums */
	if (pack < s->npack_fds && s->maps[pack].addr && len <= s->maps[pack].len &&
	    off <= s->maps[pack].len - len) {
		addr = (uint8_t *)s->maps[pack].addr + off;
		pthread_mutex_unlock(&s->pack_lock);
		return addr;
	}
	fd = pack_fd_locked(s, pack);
	if (fd < 0) {
		*err = fd;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		*err = -errno;
		goto fail;
	}
	if (len > (uint64_t)st.st_size || off > (uint64_t)st.st_size - len) {
		*err = cairn_err(-EIO, "pack %08x ends before the chunk", pack);
		goto fail;
	}
	/* packs only grow: a longer mapping replaces the old, which stays valid */
	addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED) {
		*err = -errno;
		goto fail;
	}
	m = &s->maps[pack];
	if (m->addr) {
		struct pack_map *old = malloc(sizeof(*old));

		if (!old) {
			munmap(addr, (size_t)st.st_size);
			*err = -ENOMEM;
			goto fail;
		}
		*old = *m;
		old->next = s->retired;
		s->retired = old;
	}
	m->addr = addr;
	m->len = (size_t)st.st_size;
	pthread_mutex_unlock(&s->pack_lock);
	return (uint8_t *)addr + off;
fail:
	pthread_mutex_unlock(&s->pack_lock);
	return NULL;
}

struct cairn_lazy_source *cairn_store_lazy(struct cairn_store *s)
{
	return (struct cairn_lazy_source *)s->lazy;
}

bool cairn_store_rdonly(const struct cairn_store *s)
{
	return s->flags & CAIRN_STORE_RDONLY;
}

struct cairn_chunk_source *cairn_store_chunks(struct cairn_store *s)
{
	return s->chunks;
}

void cairn_store_push_chunks(struct cairn_store *s, struct cairn_chunk_source *src)
{
	src->below = s->chunks;
	s->chunks = src;
}

const char *cairn_store_dir(const struct cairn_store *s)
{
	return s->dir;
}

const struct cairn_store_params *cairn_store_params(const struct cairn_store *s)
{
	return &s->params;
}

const struct cairn_chunker *cairn_store_chunker(const struct cairn_store *s)
{
	return &s->chunker;
}

void cairn_store_set_level(struct cairn_store *s, int level)
{
	s->params.zstd_level = level;
}

int cairn_store_sync(struct cairn_store *s)
{
	return lmdb_err(mdb_env_sync(s->env, 1), "cannot sync the store");
}

int cairn_store_set_batch_mode(struct cairn_store *s, bool on)
{
	return lmdb_err(mdb_env_set_flags(s->env, MDB_NOMETASYNC, on ? 1 : 0),
			"cannot set the sync mode");
}

int cairn_store_space(struct cairn_store *s, struct cairn_store_space *out)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	char path[4096];
	int rc;

	rc = mdb_env_info(s->env, &info);
	if (rc)
		return lmdb_err(rc, "cannot read the environment info");
	rc = mdb_env_stat(s->env, &st);
	if (rc)
		return lmdb_err(rc, "cannot read the environment statistics");
	out->page_size = st.ms_psize;
	out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
	out->file_bytes = stat(path, &fst) == 0 ? (uint64_t)fst.st_size : 0;
	return 0;
}

int cairn_txn_begin(struct cairn_store *s, bool write, struct cairn_txn **out)
{
	struct cairn_txn *t;
	int rc, dead;

	if (write && (s->flags & CAIRN_STORE_RDONLY))
		return cairn_err(-EROFS, "store '%s' is open read-only", s->dir);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (write)
		mdb_reader_check(s->env, &dead);
	rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc) {
		free(t);
		return lmdb_err(rc, write ? "cannot begin a write transaction"
					  : "cannot begin a read transaction");
	}
	t->s = s;
	t->write = write;
	*out = t;
	return 0;
}

int cairn_txn_commit(struct cairn_txn *t)
{
	int rc = mdb_txn_commit(t->txn);
	struct statvfs v;

	/*
	 * LMDB reports a short write as EIO; on a full filesystem that is what
	 * a write does, so say what happened.
	 */
	if (rc == EIO && statvfs(t->s->dir, &v) == 0 &&
	    (uint64_t)v.f_bavail * v.f_frsize < (64u << 20)) {
		free(t);
		return cairn_err(-ENOSPC, "cannot commit to the store: no space left on its "
					  "filesystem");
	}
	free(t);
	return lmdb_err(rc, "cannot commit to the store");
}

void cairn_txn_abort(struct cairn_txn *t)
{
	if (!t)
		return;
	mdb_txn_abort(t->txn);
	free(t);
}

void cairn_txn_reset(struct cairn_txn *t)
{
	mdb_txn_reset(t->txn);
}

int cairn_txn_renew(struct cairn_txn *t)
{
	return lmdb_err(mdb_txn_renew(t->txn), "cannot renew a read transaction");
}

struct cairn_store *cairn_txn_store(struct cairn_txn *t)
{
	return t->s;
}

int cairn_get(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
	      const void **val, size_t *vlen)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v;
	int rc;

	if (t->s->absent & (1u << db))
		return -ENOENT;
	rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);
	if (rc)
		return lmdb_err(rc, "cannot read from the store");
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

int cairn_put(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
	      const void *val, size_t vlen, unsigned flags, const void **old, size_t *oldlen)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v = { .mv_size = vlen, .mv_data = (void *)val };
	int rc = mdb_put(t->txn, t->s->dbi[db], &k, &v,
			 flags & CAIRN_PUT_NOOVERWRITE ? MDB_NOOVERWRITE : 0);

	if (rc == MDB_KEYEXIST && old) {
		*old = v.mv_data;
		*oldlen = v.mv_size;
	}
	return lmdb_err(rc, "cannot write to the store");
}

int cairn_put_reserve(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen,
		      size_t vlen, void **where)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v = { .mv_size = vlen, .mv_data = NULL };
	int rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, MDB_RESERVE);

	if (rc)
		return lmdb_err(rc, "cannot write to the store");
	*where = v.mv_data;
	return 0;
}

int cairn_del(struct cairn_txn *t, enum cairn_db db, const void *key, size_t klen)
{
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };

	return lmdb_err(mdb_del(t->txn, t->s->dbi[db], &k, NULL), "cannot delete from the store");
}

int cairn_epoch_get(struct cairn_txn *t, uint64_t *out)
{
	const void *v;
	size_t vl;
	int ret = cairn_get(t, CAIRN_DBI_META, CAIRN_META_EPOCH_KEY,
			    strlen(CAIRN_META_EPOCH_KEY), &v, &vl);

	if (ret == -ENOENT) {
		cairn_err_clear();
		*out = 0;
		return 0;
	}
	if (ret)
		return ret;
	if (vl != sizeof(uint64_t))
		return cairn_err(-EUCLEAN, "the store's epoch record is damaged");
	*out = cairn_le64(v);
	return 0;
}

int cairn_epoch_bump(struct cairn_txn *t, uint64_t *out)
{
	uint64_t e, le;
	int ret = cairn_epoch_get(t, &e);

	if (ret)
		return ret;
	le = htole64(e + 1);
	ret = cairn_put(t, CAIRN_DBI_META, CAIRN_META_EPOCH_KEY, strlen(CAIRN_META_EPOCH_KEY), &le,
			sizeof(le), 0, NULL, NULL);
	if (!ret && out)
		*out = e + 1;
	return ret;
}

int cairn_db_count(struct cairn_txn *t, enum cairn_db db, uint64_t *count)
{
	MDB_stat st;
	int rc;

	if (t->s->absent & (1u << db)) {
		*count = 0;
		return 0;
	}
	rc = mdb_stat(t->txn, t->s->dbi[db], &st);
	if (rc)
		return lmdb_err(rc, "cannot read database statistics");
	*count = st.ms_entries;
	return 0;
}

int cairn_cursor_open(struct cairn_txn *t, enum cairn_db db, struct cairn_cursor **out)
{
	struct cairn_cursor *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	if (t->s->absent & (1u << db)) { /* an empty walk: c->cur stays NULL */
		*out = c;
		return 0;
	}
	rc = mdb_cursor_open(t->txn, t->s->dbi[db], &c->cur);
	if (rc) {
		free(c);
		return lmdb_err(rc, "cannot open a cursor");
	}
	*out = c;
	return 0;
}

void cairn_cursor_close(struct cairn_cursor *c)
{
	if (!c)
		return;
	if (c->cur)
		mdb_cursor_close(c->cur);
	free(c);
}

int cairn_cursor_get(struct cairn_cursor *c, const void *key, size_t klen, bool next,
		     const void **k, size_t *kl, const void **v, size_t *vl)
{
	MDB_val mk = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val mv;
	MDB_cursor_op op = next ? MDB_NEXT : key ? MDB_SET_RANGE : MDB_FIRST;
	int rc;

	if (!c->cur)
		return -ENOENT;
	rc = mdb_cursor_get(c->cur, &mk, &mv, op);
	if (rc)
		return lmdb_err(rc, "cannot walk the store");
	if (k) {
		*k = mk.mv_data;
		*kl = mk.mv_size;
	}
	if (v) {
		*v = mv.mv_data;
		*vl = mv.mv_size;
	}
	return 0;
}

int cairn_cursor_del(struct cairn_cursor *c)
{
	return lmdb_err(mdb_cursor_del(c->cur, 0), "cannot delete from the store");
}

int cairn_table_each(struct cairn_txn *t, enum cairn_db db,
		     int (*fn)(const void *k, size_t kl, const void *v, size_t vl, void *arg),
		     void *arg)
{
	struct cairn_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int ret = cairn_cursor_open(t, db, &c);

	if (ret)
		return ret;
	for (ret = cairn_cursor_get(c, NULL, 0, false, &k, &kl, &v, &vl); ret == 0;
	     ret = cairn_cursor_get(c, NULL, 0, true, &k, &kl, &v, &vl)) {
		ret = fn(k, kl, v, vl, arg);
		if (ret)
			break;
	}
	cairn_cursor_close(c);
	return ret == -ENOENT ? 0 : ret;
}

static int table_add(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct cairn_table_usage *u = arg;

	u->entries++;
	u->bytes += vl;
	return 0;
}

int cairn_store_table_usage(struct cairn_txn *t, struct cairn_table_usage *out)
{
	static const struct {
		const char *name;
		enum cairn_db db;
	} tables[CAIRN_TABLES_REPORTED] = {
		{ "chunks", CAIRN_DBI_CHUNKS },	      { "contents", CAIRN_DBI_CONTENTS },
		{ "nodes", CAIRN_DBI_NODES },	      { "layers", CAIRN_DBI_LAYERS },
		{ "images", CAIRN_DBI_IMAGES },	      { "tags", CAIRN_DBI_TAGS },
		{ "platforms", CAIRN_DBI_PLATFORMS }, { "packs", CAIRN_DBI_PACKS },
		{ "lazy", CAIRN_DBI_LAZY },
	};

	for (size_t i = 0; i < CAIRN_TABLES_REPORTED; i++) {
		int ret;

		out[i] = (struct cairn_table_usage){ .name = tables[i].name };
		ret = cairn_table_each(t, tables[i].db, table_add, &out[i]);
		if (ret)
			return ret;
	}
	return 0;
}

struct pack_each {
	int (*fn)(uint32_t pack, uint64_t bytes, void *arg);
	void *arg;
};

static int pack_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
	struct pack_each *pe = arg;
	struct cairn_pack_disk d;
	uint32_t pack;

	if (kl != sizeof(pack) || vl != sizeof(d))
		return 0; /* fsck reports it */
	memcpy(&pack, k, sizeof(pack));
	memcpy(&d, v, sizeof(d));
	return pe->fn(be32toh(pack), CAIRN_GET(d.size), pe->arg);
}

int cairn_store_pack_each(struct cairn_txn *t, int (*fn)(uint32_t pack, uint64_t bytes, void *arg),
			  void *arg)
{
	struct pack_each pe = { fn, arg };

	return cairn_table_each(t, CAIRN_DBI_PACKS, pack_one, &pe);
}

static int count_other_readers(const char *msg, void *ctx)
{
	int *n = ctx;
	int pid;

	/* lines: "    pid     thread     txnid" after a header */
	if (sscanf(msg, " %d", &pid) == 1 && pid != getpid())
		(*n)++;
	return 0;
}

int cairn_store_compact(struct cairn_store *s)
{
	char tmp[4096], data[4096];
	int others = 0, dead, rc, ret = 0;

	mdb_reader_check(s->env, &dead);
	mdb_reader_list(s->env, count_other_readers, &others);
	if (others) {
		cairn_store_close(s);
		return cairn_err(-EBUSY, "%d other process%s the store open (running mounts?); "
					 "compaction needs it to itself", others,
				 others == 1 ? " has" : "es have");
	}
	snprintf(tmp, sizeof(tmp), "%s/compact.tmp", s->dir);
	snprintf(data, sizeof(data), "%s/data.mdb", s->dir);
	mkdir(tmp, 0700);
	{
		char f[4200];

		snprintf(f, sizeof(f), "%s/data.mdb", tmp);
		unlink(f);
		rc = mdb_env_copy2(s->env, tmp, MDB_CP_COMPACT);
		if (rc) {
			ret = lmdb_err(rc, "cannot write a compacted copy");
		} else {
			int fd = open(f, O_RDONLY | O_CLOEXEC);

			/* LMDB made it 0644 less the umask: it replaces a 0600 file */
			if (fd < 0 || fchmod(fd, 0600) < 0 || fsync(fd) < 0)
				ret = cairn_err(-errno, "cannot sync the compacted copy");
			if (fd >= 0)
				close(fd);
		}
		cairn_store_close(s);
		if (!ret && rename(f, data) < 0)
			ret = cairn_err(-errno, "cannot put the compacted copy in place");
		unlink(f);
		rmdir(tmp);
	}
	return ret;
}

struct old_readers {
	size_t last;
	int old;
};

static int find_old_reader(const char *msg, void *ctx)
{
	struct old_readers *o = ctx;
	unsigned long long txnid;
	int pid;
	char thread[64];

	/* "    pid     thread     txnid"; an idle slot shows '-' for its txnid */
	if (sscanf(msg, " %d %63s %llu", &pid, thread, &txnid) == 3 && txnid < o->last)
		o->old++;
	return 0;
}

int cairn_store_wait_readers(struct cairn_store *s, int timeout_ms)
{
	MDB_envinfo info;
	int dead;

	if (mdb_env_info(s->env, &info))
		return 0;
	for (int waited = 0;; waited += 10) {
		struct old_readers o = { .last = info.me_last_txnid };

		mdb_reader_check(s->env, &dead);
		mdb_reader_list(s->env, find_old_reader, &o);
		if (!o.old)
			return 0;
		if (waited >= timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}
