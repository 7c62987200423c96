/* SPDX-License-Identifier: MIT */
/*
 * cmd_transfer.c - cairn push, pull, follow (in cairn-remote).
 */
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "layout.h"
#include "platform.h"
#include "rgc.h"
#include "transfer.h"

const char cmd_push_help[] =
	"Uploads what REMOTE lacks of an image: a second push of the same image sends\n"
	"nothing, v2 after v1 sends about what v2 adds. IMAGE may be a tag (the remote's\n"
	"tag of that name then points at it), a platform (its current image becomes the\n"
	"remote platform's next generation, created once: two pushers never share a\n"
	"generation; a rollback is pushed the same way, as a newer generation), or an id.\n"
	"--sign KEY signs the tag or generation with an Ed25519 key ('cairn remote keygen'\n"
	"makes one). A push killed at any moment leaves no half object on the remote;\n"
	"re-running it sends what is still missing. --json prints objects_sent,\n"
	"bytes_sent, objects_received, bytes_received and seconds.\n";

const char cmd_pull_help[] =
	"Downloads what the store lacks of a remote tag, platform (its newest generation;\n"
	"PLATFORM@GEN for one) or image id, checking every object against its id before\n"
	"it is stored: a damaged, truncated or substituted object is an error and nothing\n"
	"is published. A tag pulled makes the same tag here (--tag NAME: another name); a\n"
	"platform pulled moves the platform of that name here (live, on running mounts),\n"
	"or with --tag NAME only tags the image. A remote added with --trust accepts only\n"
	"tags and generations signed by that key. A pull killed at any moment leaves the\n"
	"store as it was; re-running it fetches only what is still missing.\n"
	"--lazy fetches only the image's metadata (nodes and content lists, checked): it\n"
	"mounts at once, and a chunk is fetched (checked, and kept) when first read; a\n"
	"later pull without --lazy fetches the rest. Lazy reads use the remote's\n"
	"credentials file, never the environment; --json adds lazy_chunks, lazy_bytes.\n";

const char cmd_follow_help[] =
	"Switches PLATFORM here to the image of the remote platform's newest generation,\n"
	"pulled first, live on running mounts, and records that generation: a follower\n"
	"only ever moves to a newer one (a replayed older pointer is refused; a pushed\n"
	"rollback is a newer generation). --watch SECONDS keeps polling. A local\n"
	"upgrade or rollback of the platform pauses following until --resume.\n"
	"--lazy pulls each generation as pull --lazy does (chunks on first read).\n";

struct summary {
	bool json;
	const char *what;
	json_object *o;
};

static void summary_print(struct cairn_xfer *x, struct summary *sm)
{
	const struct cairn_s3_stats *st = cairn_s3_stats(x->c->s3);
	double secs = cairn_xfer_seconds(x);

	x->st.bytes_sent = st->bytes_sent - x->bytes_base;
	x->st.bytes_received = st->bytes_received;
	if (sm->json) {
		json_object *o = sm->o ? sm->o : json_object_new_object();

		json_object_object_add(o, "objects_sent", json_object_new_int64((int64_t)x->st.objects_sent));
		json_object_object_add(o, "bytes_sent", json_object_new_int64((int64_t)x->st.bytes_sent));
		json_object_object_add(o, "objects_received",
				       json_object_new_int64((int64_t)x->st.objects_received));
		json_object_object_add(o, "bytes_received",
				       json_object_new_int64((int64_t)x->st.bytes_received));
		json_object_object_add(o, "seconds", json_object_new_double(secs));
		if (x->lazy) {
			json_object_object_add(o, "lazy_chunks",
					       json_object_new_int64((int64_t)x->st.lazy_chunks));
			json_object_object_add(o, "lazy_bytes",
					       json_object_new_int64((int64_t)x->st.lazy_bytes));
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		sm->o = NULL;
		return;
	}
	printf("%s: %" PRIu64 " objects (%.1f MiB) sent, %" PRIu64 " objects (%.1f MiB) "
	       "received in %.2f s\n", sm->what, x->st.objects_sent,
	       (double)x->st.bytes_sent / 1048576.0, x->st.objects_received,
	       (double)x->st.bytes_received / 1048576.0, secs);
	if (x->lazy && x->st.lazy_chunks)
		printf("lazy: %" PRIu64 " chunks (%.1f MiB) stay on the remote until read\n",
		       x->st.lazy_chunks, (double)x->st.lazy_bytes / 1048576.0);
}

static void json_add_id(json_object *o, const char *k, const struct cairn_id *id)
{
	char hex[CAIRN_ID_HEX_LEN + 1];

	cairn_id_hex(id, hex);
	json_object_object_add(o, k, json_object_new_string(hex));
}

/* Opens the store and the remote, checks the remote's marker. */
static int open_both(struct cli *cli, bool write, const char *remote, struct cairn_store **s,
		     struct cairn_remote_conn **c)
{
	int ret;

	if (cli_open(cli, write, s))
		return -EIO;
	ret = cairn_remote_open(*s, remote, 0, c);
	if (!ret) {
		ret = cairn_remote_check_marker(*c, cairn_store_params(*s), false);
		if (ret) {
			cairn_remote_conn_free(*c);
			*c = NULL;
		}
	}
	if (ret) {
		cli_fail(ret, "cannot reach remote '%s'", remote);
		cairn_store_close(*s);
		*s = NULL;
	}
	return ret;
}

int cmd_push(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sign", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct summary sm = { .what = "pushed" };
	struct cairn_signer key;
	struct cairn_remote_conn *c = NULL;
	struct cairn_store *s = NULL;
	struct cairn_platform plat;
	struct cairn_xfer x;
	struct cairn_txn *t;
	struct cairn_id image;
	const char *keyfile = NULL, *name, *remote;
	char lockkey[CAIRN_RKEY_MAX] = "";
	bool is_tag = false, is_platform = false;
	uint64_t gen = 0;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's')
			keyfile = optarg;
		else if (opt == 'j')
			sm.json = true;
		else
			return cli_usage("push", "unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 2)
		return cli_usage("push", "push takes an image or platform and a remote");
	name = argv[optind];
	remote = argv[optind + 1];
	if (keyfile && cairn_sign_load(keyfile, &key))
		return cli_fail(-EINVAL, "cannot push '%s'", name);
	if (open_both(cli, false, remote, &s, &c))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		if (cairn_tag_check(name) == 0 && cairn_tag_get(t, name, &image) == 0) {
			is_tag = true;
		} else if (cairn_platform_get(t, name, &plat) == 0) {
			image = plat.image;
			is_platform = true;
		} else {
			cairn_err_clear();
			ret = cli_resolve(t, name, &image, NULL);
		}
		cairn_txn_abort(t);
	}
	cairn_xfer_init(&x, s, c, "pushing", cli->tty && !sm.json);
	x.sign = keyfile ? &key : NULL;
	if (!ret)
		ret = cairn_rlock_push(c, lockkey, sizeof(lockkey));
	x.bytes_base = cairn_s3_stats(c->s3)->bytes_sent; /* the lock is not the image */
	x.lock_key = *lockkey ? lockkey : NULL;
	x.lock_ns = cairn_now_ns();
	if (!ret) {
		if (is_tag)
			ret = cairn_push_tag(&x, name, &image);
		else if (is_platform)
			ret = cairn_push_platform(&x, name, &gen);
		else
			ret = cairn_push_image(&x, &image);
	}
	cairn_xfer_progress(&x, true);
	if (*lockkey) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", cairn_errmsg());
		cairn_rlock_release(c, lockkey);
		if (ret)
			cairn_err(ret, "%s", msg);
	}
	if (ret) {
		cli_fail(ret, "cannot push '%s' to '%s'", name, remote);
	} else {
		char hex[CAIRN_ID_HEX_LEN + 1], what[300];

		cairn_id_hex(&image, hex);
		if (is_platform)
			snprintf(what, sizeof(what), "%s is generation %" PRIu64 " on %s (image %.12s)",
				 name, gen, remote, hex);
		else
			snprintf(what, sizeof(what), "pushed %.12s%s%s to %s", hex,
				 is_tag ? " as tag " : "", is_tag ? name : "", remote);
		sm.what = what;
		if (sm.json) {
			sm.o = json_object_new_object();
			json_add_id(sm.o, "image", &image);
			if (is_tag)
				json_object_object_add(sm.o, "tag", json_object_new_string(name));
			if (is_platform) {
				json_object_object_add(sm.o, "platform", json_object_new_string(name));
				json_object_object_add(sm.o, "generation",
						       json_object_new_int64((int64_t)gen));
			}
		}
		summary_print(&x, &sm);
	}
	if (keyfile)
		cairn_sign_release(&key);
	cairn_remote_conn_free(c);
	cairn_store_close(s);
	return ret ? 1 : 0;
}

/*
 * Moves platform here to image for remote generation rgen: through the
 * follow record when following (or when it has one for this remote), else a
 * plain upgrade. Tells the mounts. Returns 0, or -errno with a message;
 * *moved says whether a generation was added.
 */
static int switch_platform(struct cli *cli, struct cairn_store *s, const char *platform,
			   const char *remote, uint64_t rgen, const struct cairn_id *image,
			   bool follow, bool resume, uint64_t *gen, bool *moved)
{
	struct cairn_platform before = { 0 };
	struct cairn_follow f;
	struct cairn_txn *t;
	bool has_follow = false;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	if (cairn_platform_get(t, platform, &before))
		before.generation = 0;
	has_follow = cairn_follow_get(t, platform, &f) == 0 && strcmp(f.remote, remote) == 0;
	cairn_txn_abort(t);
	cairn_err_clear();
	if (follow || has_follow)
		ret = cairn_follow_switch(s, platform, remote, rgen, image, resume, gen);
	else
		ret = cairn_platform_upgrade(s, platform, image, gen);
	if (ret)
		return ret;
	*moved = *gen != before.generation;
	return 0;
}

int cmd_pull(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "lazy", no_argument, NULL, 'l' },
		{ 0 },
	};
	struct summary sm = { .what = "pulled" };
	struct cairn_remote_conn *c = NULL;
	struct cairn_store *s = NULL;
	struct cairn_rtarget target;
	struct cairn_xfer x;
	const char *tag = NULL, *name, *remote, *local_tag;
	char hex[CAIRN_ID_HEX_LEN + 1], what[400];
	uint64_t gen = 0;
	bool moved = false, lazy = false;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 't')
			tag = optarg;
		else if (opt == 'j')
			sm.json = true;
		else if (opt == 'l')
			lazy = true;
		else
			return cli_usage("pull", "unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 2)
		return cli_usage("pull", "pull takes a remote and an image, tag or platform");
	remote = argv[optind];
	name = argv[optind + 1];
	if (cli_check_tag("pull", tag))
		return 2;
	if (open_both(cli, true, remote, &s, &c))
		return 1;
	cairn_xfer_init(&x, s, c, "pulling", cli->tty && !sm.json);
	x.lazy = lazy;
	ret = cairn_remote_resolve(&x, name, &target);
	local_tag = tag ? tag : target.is_tag ? target.name : NULL;
	if (!ret)
		ret = cairn_pull_image(&x, &target.image, local_tag);
	if (!ret && target.is_platform && !tag)
		ret = switch_platform(cli, s, target.name, remote, target.generation, &target.image,
				      false, false, &gen, &moved);
	if (ret) {
		cairn_remote_conn_free(c);
		cairn_store_close(s);
		return cli_fail(ret, "cannot pull '%s' from '%s'", name, remote);
	}
	cairn_id_hex(&target.image, hex);
	if (target.is_platform && !tag)
		snprintf(what, sizeof(what), "%s %s generation %" PRIu64 " here: image %.12s "
			 "(remote generation %" PRIu64 ")", target.name,
			 moved ? "is now" : "was already", gen, hex, target.generation);
	else
		snprintf(what, sizeof(what), "pulled %.12s%s%s", hex, local_tag ? " as " : "",
			 local_tag ? local_tag : "");
	sm.what = what;
	if (sm.json) {
		sm.o = json_object_new_object();
		json_add_id(sm.o, "image", &target.image);
		if (local_tag)
			json_object_object_add(sm.o, "tag", json_object_new_string(local_tag));
		if (target.is_platform && !tag) {
			json_object_object_add(sm.o, "platform", json_object_new_string(target.name));
			json_object_object_add(sm.o, "generation", json_object_new_int64((int64_t)gen));
		}
	}
	summary_print(&x, &sm);
	cairn_remote_conn_free(c);
	cairn_store_close(s);
	fflush(stdout);
	if (moved) /* after the summary, apart from it with --json */
		cli_notify_mounts(cli, target.name, sm.json ? stderr : stdout);
	return fflush(stdout) == 0 ? 0 : 1;
}

static volatile sig_atomic_t follow_stop;

static void on_stop(int sig)
{
	follow_stop = 1;
}

/* One look at the remote: pull and switch when it has a newer generation. */
static int follow_once(struct cli *cli, const char *remote, const char *platform, bool resume,
		       bool json, bool lazy)
{
	struct summary sm = { .json = json };
	struct cairn_remote_conn *c = NULL;
	struct cairn_store *s = NULL;
	struct cairn_rptr head;
	struct cairn_follow f;
	struct cairn_xfer x;
	struct cairn_txn *t;
	char hex[CAIRN_ID_HEX_LEN + 1], what[400];
	uint64_t applied = 0, gen = 0;
	bool moved = false;
	int ret;

	if (open_both(cli, true, remote, &s, &c))
		return -EIO;
	cairn_xfer_init(&x, s, c, "pulling", cli->tty && !json);
	x.lazy = lazy;
	ret = cairn_remote_platform_head(&x, platform, &head);
	if (!ret && !head.generation)
		ret = cairn_err(-ENOENT, "the remote has no platform '%s'", platform);
	if (!ret && c->rec.trust)
		ret = cairn_sign_check(c->rec.trust_key, &head);
	if (!ret && cairn_txn_begin(s, false, &t) == 0) {
		if (cairn_follow_get(t, platform, &f) == 0 && strcmp(f.remote, remote) == 0)
			applied = f.remote_gen;
		cairn_txn_abort(t);
		cairn_err_clear();
	}
	if (!ret && head.generation <= applied && !resume) {
		/* nothing newer (a replayed older generation is never applied) */
		if (json)
			printf("{\"platform\": \"%s\", \"generation\": %" PRIu64 ", \"up_to_date\": true}\n",
			       platform, applied);
		else
			printf("%s is up to date with %s (generation %" PRIu64 ")\n", platform, remote,
			       applied);
		goto out;
	}
	if (!ret)
		ret = cairn_pull_image(&x, &head.image, NULL);
	if (!ret)
		ret = switch_platform(cli, s, platform, remote, head.generation, &head.image, true,
				      resume, &gen, &moved);
	if (ret)
		goto out;
	cairn_id_hex(&head.image, hex);
	snprintf(what, sizeof(what), "%s follows %s generation %" PRIu64 ": %s generation %" PRIu64
		 " here, image %.12s", platform, remote, head.generation,
		 moved ? "now" : "already", gen, hex);
	sm.what = what;
	if (json) {
		sm.o = json_object_new_object();
		json_add_id(sm.o, "image", &head.image);
		json_object_object_add(sm.o, "platform", json_object_new_string(platform));
		json_object_object_add(sm.o, "generation", json_object_new_int64((int64_t)gen));
		json_object_object_add(sm.o, "remote_generation",
				       json_object_new_int64((int64_t)head.generation));
	}
	summary_print(&x, &sm);
out:
	cairn_remote_conn_free(c);
	cairn_store_close(s);
	fflush(stdout);
	if (!ret && moved)
		cli_notify_mounts(cli, platform, json ? stderr : stdout);
	fflush(stdout);
	if (ret)
		cli_fail(ret, "cannot follow '%s' on '%s'", platform, remote);
	return ret;
}

int cmd_follow(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "resume", no_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "lazy", no_argument, NULL, 'l' },
		{ 0 },
	};
	double watch = 0;
	bool resume = false, json = false, lazy = false;
	char *end;
	int opt, ret;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'w':
			watch = strtod(optarg, &end);
			if (*end || !(watch >= 0.1) || watch > 86400)
				return cli_usage("follow", "--watch takes seconds, 0.1 to 86400");
			break;
		case 'r':
			resume = true;
			break;
		case 'j':
			json = true;
			break;
		case 'l':
			lazy = true;
			break;
		default:
			return cli_usage("follow", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage("follow", "follow takes a remote and a platform");
	if (cairn_platform_check(argv[optind + 1]))
		return cli_usage("follow", "'%s' is not a valid platform name", argv[optind + 1]);
	ret = follow_once(cli, argv[optind], argv[optind + 1], resume, json, lazy);
	if (!watch)
		return ret ? 1 : 0;
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	while (!follow_stop) {
		struct timespec ts = { (time_t)watch, (long)((watch - (double)(time_t)watch) * 1e9) };

		nanosleep(&ts, NULL);
		if (follow_stop)
			break;
		/* a failure is reported and the watch goes on: the remote may come back */
		ret = follow_once(cli, argv[optind], argv[optind + 1], false, json, lazy);
	}
	return 0;
}

int cli_gc_remote(struct cli *cli, const char *remote, int64_t keep)
{
	struct cairn_remote_conn *c = NULL;
	struct cairn_store *s = NULL;
	struct cairn_rgc_stats st;
	int ret;

	if (open_both(cli, false, remote, &s, &c))
		return 1;
	ret = cairn_remote_gc(c, keep, &st);
	cairn_remote_conn_free(c);
	cairn_store_close(s);
	if (ret)
		return cli_fail(ret, "cannot collect garbage on remote '%s'", remote);
	printf("remote %s: %" PRIu64 " generations, %" PRIu64 " images, %" PRIu64
	       " packs removed; %" PRIu64 " images and %" PRIu64 " packs kept\n", remote,
	       st.generations, st.images, st.packs, st.images_kept, st.packs_kept);
	return 0;
}
