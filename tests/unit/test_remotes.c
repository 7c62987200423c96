/* SPDX-License-Identifier: MIT */
/*
 * test_remotes.c - remote and follow records in a real LMDB store: records
 * round-trip without credentials, a follower moves only to higher remote
 * generations, a local move pauses it until a resume, remove drops the
 * follow records naming the remote, and a store made before these
 * databases existed gets them on its next writable open.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>

#include "node.h"
#include "platform.h"
#include "remotes.h"
#include "writer.h"

static char dir[] = "/tmp/cairn-test-XXXXXX";
static struct cairn_store *store;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void setup(void)
{
	strcpy(dir, "/tmp/cairn-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_CREATE, NULL, &store), 0, "%s",
		     cairn_errmsg());
}

static void teardown(void)
{
	cairn_store_close(store);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(remotes, .init = setup, .fini = teardown);

static struct cairn_remote_rec rec(const char *name, const char *url)
{
	struct cairn_remote_rec r = {
		.name = (char *)name, .url = (char *)url, .endpoint = (char *)"http://127.0.0.1:1",
		.ca_file = (char *)"", .cred_file = (char *)"/etc/creds", .timeout_ms = 2500,
	};
	return r;
}

/* An empty-directory image, different per seed (its mtime). */
static struct cairn_id image(int64_t seed)
{
	struct cairn_node_build n = { .type = CAIRN_NODE_DIR, .mode = 0755, .mtime_sec = seed };
	struct cairn_publish p = { .source = CAIRN_LAYER_DIR, .nodes = 1 };
	struct cairn_writer *w;
	struct cairn_id root, id;

	cr_assert_eq(cairn_writer_new(store, 0, &w), 0);
	cr_assert_eq(cairn_writer_put_node(w, &n, &root), 0, "%s", cairn_errmsg());
	p.layer_root = root;
	p.root = root;
	cr_assert_eq(cairn_writer_publish(w, &p, &id), 0, "%s", cairn_errmsg());
	cairn_writer_free(w);
	return id;
}

Test(remotes, records_round_trip)
{
	struct cairn_remote_rec a = rec("origin", "s3://fleet/a"), got;
	struct cairn_txn *t;

	a.trust = true;
	memset(a.trust_key, 0xab, sizeof(a.trust_key));
	cr_assert_eq(cairn_remote_add(store, &a), 0, "%s", cairn_errmsg());
	cr_assert_eq(cairn_remote_add(store, &a), -EEXIST);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_remote_get(t, "origin", &got), 0, "%s", cairn_errmsg());
	cr_assert_str_eq(got.url, "s3://fleet/a");
	cr_assert_str_eq(got.cred_file, "/etc/creds");
	cr_assert_str_eq(got.ca_file, "");
	cr_assert_eq(got.timeout_ms, 2500);
	cr_assert(got.trust);
	cr_assert_eq(got.trust_key[31], 0xab);
	cairn_remote_rec_release(&got);
	cr_assert_eq(cairn_remote_get(t, "nothere", &got), -ENOENT);
	cairn_txn_abort(t);
	cr_assert_eq(cairn_remote_remove(store, "origin"), 0);
	cr_assert_eq(cairn_remote_remove(store, "origin"), -ENOENT);
}

Test(remotes, follow_only_moves_forward)
{
	struct cairn_remote_rec a = rec("origin", "s3://fleet/a");
	struct cairn_id v1 = image(1), v2 = image(2), v3 = image(3);
	struct cairn_follow f;
	struct cairn_txn *t;
	uint64_t gen = 0;

	cr_assert_eq(cairn_remote_add(store, &a), 0);
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 5, &v1, false, &gen), 0, "%s",
		     cairn_errmsg());
	cr_assert_eq(gen, 1);
	/* the same or an older remote generation: refused, nothing moves */
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 5, &v2, false, &gen), -ESTALE);
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 4, &v2, false, &gen), -ESTALE);
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 6, &v2, false, &gen), 0);
	cr_assert_eq(gen, 2);
	/* a local rollback pauses following until a resume */
	cr_assert_eq(cairn_platform_upgrade(store, "web", &v1, &gen), 0);
	cr_assert_eq(gen, 3);
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 7, &v3, false, &gen), -EBUSY);
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 7, &v3, true, &gen), 0, "%s",
		     cairn_errmsg());
	cr_assert_eq(gen, 4);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_follow_get(t, "web", &f), 0);
	cr_assert_str_eq(f.remote, "origin");
	cr_assert_eq(f.remote_gen, 7);
	cr_assert_eq(f.local_gen, 4);
	cairn_txn_abort(t);
	/* the remote already on the image: the record moves, no generation is added */
	cr_assert_eq(cairn_follow_switch(store, "web", "origin", 8, &v3, false, &gen), 0);
	cr_assert_eq(gen, 4);
	/* removing the remote drops its follow records */
	cr_assert_eq(cairn_remote_remove(store, "origin"), 0);
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_follow_get(t, "web", &f), -ENOENT);
	cairn_txn_abort(t);
}

Test(remotes, added_databases_appear_on_open)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	struct cairn_txn *t;
	struct cairn_remote_rec got;

	/* drop the added databases, as in a store made before they existed */
	cairn_store_close(store);
	cr_assert_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, CAIRN_MAP_SIZE);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, CAIRN_DB_REMOTES, 0, &dbi), 0);
	cr_assert_eq(mdb_drop(txn, dbi, 1), 0);
	cr_assert_eq(mdb_dbi_open(txn, CAIRN_DB_FOLLOWS, 0, &dbi), 0);
	cr_assert_eq(mdb_drop(txn, dbi, 1), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	/* read-only: the missing databases read as empty */
	cr_assert_eq(cairn_store_open(dir, CAIRN_STORE_RDONLY, NULL, &store), 0, "%s",
		     cairn_errmsg());
	cr_assert_eq(cairn_txn_begin(store, false, &t), 0);
	cr_assert_eq(cairn_remote_get(t, "origin", &got), -ENOENT);
	cairn_txn_abort(t);
	cairn_store_close(store);
	/* writable: made */
	cr_assert_eq(cairn_store_open(dir, 0, NULL, &store), 0, "%s", cairn_errmsg());
	struct cairn_remote_rec a = rec("origin", "s3://fleet/a");
	cr_assert_eq(cairn_remote_add(store, &a), 0, "%s", cairn_errmsg());
}
