/* SPDX-License-Identifier: MIT */
/*
 * cmd_remote.c - cairn remote add, ls, rm (in cairn-remote).
 */
#include <ctype.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"
#include "remote.h"
#include "sign.h"

const char cmd_remote_help[] =
	"remote add NAME s3://BUCKET[/PREFIX] names a remote store: a bucket (made when\n"
	"missing) of an S3 service, cairn's objects under PREFIX/. --endpoint URL is the\n"
	"service (http:// or https://; default $CAIRN_S3_ENDPOINT, else\n"
	"https://s3.amazonaws.com), --ca FILE the PEM certificates that sign its TLS\n"
	"certificate (default: the system's), --timeout SECONDS how long a read may make\n"
	"no progress (default 30), --trust PUBKEY (64 hex digits, or a file holding them)\n"
	"the Ed25519 key whose signature tags and platform generations pulled from it\n"
	"must carry. Credentials: --credentials FILE (mode 0600; aws_access_key_id and\n"
	"aws_secret_access_key lines, as in ~/.aws/credentials), else AWS_ACCESS_KEY_ID\n"
	"and AWS_SECRET_ACCESS_KEY; they are never stored, only the file's path.\n"
	"remote add checks the credentials and the bucket before it records anything.\n"
	"remote ls lists the remotes; remote rm NAME forgets one (the bucket is kept).\n"
	"remote keygen KEYFILE makes an Ed25519 key pair for 'push --sign KEYFILE', writes\n"
	"the private key to KEYFILE (0600) and prints the public key for --trust.\n";

/* 64 hex digits, or a file whose first line holds them. */
static int parse_pubkey(const char *arg, uint8_t key[CAIRN_REMOTE_KEY_LEN])
{
	char buf[256];
	const char *hex = arg;
	size_t n;

	if (strlen(arg) != 2 * CAIRN_REMOTE_KEY_LEN) {
		FILE *f = fopen(arg, "re");

		if (!f)
			return -ENOENT;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		buf[strcspn(buf, " \t\r\n")] = '\0';
		hex = buf;
	}
	if (strlen(hex) != 2 * CAIRN_REMOTE_KEY_LEN)
		return -EINVAL;
	for (unsigned i = 0; i < CAIRN_REMOTE_KEY_LEN; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)hex[2 * i]) ||
		    !isxdigit((unsigned char)hex[2 * i + 1]))
			return -EINVAL;
		key[i] = (uint8_t)v;
	}
	return 0;
}

static int remote_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "credentials", required_argument, NULL, 'c' },
		{ "ca", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "trust", required_argument, NULL, 'k' },
		{ 0 },
	};
	const char *endpoint = getenv("CAIRN_S3_ENDPOINT"), *cred = NULL, *ca = NULL;
	struct cairn_remote_rec rec = { .timeout_ms = CAIRN_REMOTE_TIMEOUT_MS };
	struct cairn_remote_conn *conn = NULL;
	char cred_abs[PATH_MAX] = "", ca_abs[PATH_MAX] = "";
	struct cairn_store *s;
	char *bucket = NULL, *prefix = NULL, *end;
	int opt, ret;

	if (!endpoint || !*endpoint)
		endpoint = "https://s3.amazonaws.com";
	optind = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			endpoint = optarg;
			break;
		case 'c':
			cred = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 't': {
			double secs = strtod(optarg, &end);

			if (*end || !(secs > 0) || secs > 3600)
				return cli_usage("remote", "--timeout takes seconds, 0 < S <= 3600");
			rec.timeout_ms = (uint32_t)(secs * 1000 + 0.5);
			if (!rec.timeout_ms)
				rec.timeout_ms = 1;
			break;
		}
		case 'k':
			ret = parse_pubkey(optarg, rec.trust_key);
			if (ret)
				return cli_usage("remote", "--trust takes an Ed25519 public key: 64 hex "
							   "digits or a file holding them ('%s')",
						 optarg);
			rec.trust = true;
			break;
		default:
			return cli_usage("remote", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage("remote", "remote add takes a name and s3://BUCKET[/PREFIX]");
	if (cairn_remote_name_check(argv[optind]))
		return cli_usage("remote", "'%s' is not a valid remote name (letters, digits, '.', "
					   "'_', '-'; at most 128)", argv[optind]);
	if (cairn_remote_url_parse(argv[optind + 1], &bucket, &prefix) ||
	    cairn_remote_endpoint_check(endpoint)) {
		free(bucket);
		free(prefix);
		return cli_usage("remote", "%s", cairn_errmsg());
	}
	free(bucket);
	free(prefix);
	if (cred && !realpath(cred, cred_abs))
		return cli_fail(-errno, "cannot add remote '%s': credentials '%s'", argv[optind],
				cred);
	if (ca && !realpath(ca, ca_abs))
		return cli_fail(-errno, "cannot add remote '%s': CA file '%s'", argv[optind], ca);
	if (ca && access(ca_abs, R_OK) < 0)
		return cli_fail(-errno, "cannot add remote '%s': CA file '%s'", argv[optind], ca);

	rec.name = strdup(argv[optind]);
	rec.url = strdup(argv[optind + 1]);
	rec.endpoint = strdup(endpoint);
	rec.ca_file = strdup(ca_abs);
	rec.cred_file = strdup(cred_abs);
	if (!rec.name || !rec.url || !rec.endpoint || !rec.ca_file || !rec.cred_file) {
		cairn_remote_rec_release(&rec);
		return cli_fail(-ENOMEM, "cannot add remote");
	}
	/* the store first: a store that cannot be opened should not cost a bucket */
	if (cli_open(cli, true, &s)) {
		cairn_remote_rec_release(&rec);
		return 1;
	}
	{
		struct cairn_remote_rec copy = { 0 };
		struct cairn_txn *t;

		ret = cairn_txn_begin(s, false, &t);
		if (!ret) {
			ret = cairn_remote_get(t, rec.name, &copy);
			cairn_txn_abort(t);
			cairn_remote_rec_release(&copy);
			if (ret == 0) {
				ret = cairn_err(-EEXIST, "there is a remote '%s' already (remote rm "
							 "it first)", rec.name);
			} else if (ret == -ENOENT) {
				cairn_err_clear();
				ret = 0;
			}
		}
	}
	if (!ret) {
		struct cairn_remote_rec copy = {
			.name = strdup(rec.name), .url = strdup(rec.url),
			.endpoint = strdup(rec.endpoint), .ca_file = strdup(rec.ca_file),
			.cred_file = strdup(rec.cred_file), .timeout_ms = rec.timeout_ms,
		};

		ret = cairn_remote_connect(&copy, 0, &conn);
	}
	if (!ret)
		ret = cairn_s3_bucket(conn->s3, true);
	if (!ret)
		ret = cairn_remote_check_marker(conn, cairn_store_params(s), true);
	if (!ret)
		ret = cairn_remote_add(s, &rec);
	if (ret)
		cli_fail(ret, "cannot add remote '%s' (%s at %s)", rec.name, rec.url, rec.endpoint);
	else
		printf("%s: %s at %s\n", rec.name, rec.url, rec.endpoint);
	cairn_remote_conn_free(conn);
	cairn_remote_rec_release(&rec);
	cairn_store_close(s);
	return ret ? 1 : 0;
}

struct ls_ctx {
	bool json;
	json_object *arr;
};

static int ls_one(const struct cairn_remote_rec *r, void *arg)
{
	struct ls_ctx *c = arg;
	char key[2 * CAIRN_REMOTE_KEY_LEN + 1] = "";

	if (r->trust)
		for (unsigned i = 0; i < CAIRN_REMOTE_KEY_LEN; i++)
			snprintf(key + 2 * i, 3, "%02x", r->trust_key[i]);
	if (c->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(r->name));
		json_object_object_add(o, "url", json_object_new_string(r->url));
		json_object_object_add(o, "endpoint", json_object_new_string(r->endpoint));
		json_object_object_add(o, "ca", json_object_new_string(r->ca_file));
		json_object_object_add(o, "credentials", json_object_new_string(r->cred_file));
		json_object_object_add(o, "timeout", json_object_new_double(r->timeout_ms / 1000.0));
		json_object_object_add(o, "trust", r->trust ? json_object_new_string(key) : NULL);
		json_object_array_add(c->arr, o);
		return 0;
	}
	printf("%-16s %-32s %s", r->name, r->url, r->endpoint);
	if (*r->cred_file)
		printf("  credentials %s", r->cred_file);
	if (*r->ca_file)
		printf("  ca %s", r->ca_file);
	if (r->timeout_ms != CAIRN_REMOTE_TIMEOUT_MS)
		printf("  timeout %.3gs", r->timeout_ms / 1000.0);
	if (r->trust)
		printf("  trust %.16s...", key);
	putchar('\n');
	return 0;
}

static int remote_ls(struct cli *cli, int argc, char **argv)
{
	struct ls_ctx c = { 0 };
	struct cairn_store *s;
	struct cairn_txn *t;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else
			return cli_usage("remote", "remote ls takes only --json");
	}
	if (cli_open(cli, false, &s))
		return 1;
	ret = cairn_txn_begin(s, false, &t);
	if (!ret) {
		if (c.json)
			c.arr = json_object_new_array();
		ret = cairn_remote_walk(t, ls_one, &c);
		cairn_txn_abort(t);
	}
	if (!ret && c.json)
		printf("%s\n", json_object_to_json_string_ext(c.arr, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(c.arr);
	cairn_store_close(s);
	return ret ? cli_fail(ret, "cannot list remotes") : 0;
}

static int remote_rm(struct cli *cli, int argc, char **argv)
{
	struct cairn_store *s;
	int ret;

	if (argc != 2)
		return cli_usage("remote", "remote rm takes one name");
	if (cli_open(cli, true, &s))
		return 1;
	ret = cairn_remote_remove(s, argv[1]);
	cairn_store_close(s);
	return ret ? cli_fail(ret, "cannot remove remote '%s'", argv[1]) : 0;
}

int cmd_remote(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("remote", "remote takes add, ls, rm or keygen");
	if (strcmp(argv[1], "add") == 0)
		return remote_add(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "ls") == 0)
		return remote_ls(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "rm") == 0)
		return remote_rm(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "keygen") == 0) {
		struct cairn_signer k;
		char hex[2 * CAIRN_KEY_LEN + 1];

		if (argc != 3)
			return cli_usage("remote", "remote keygen takes a file for the private key");
		if (cairn_sign_keygen(argv[2], &k))
			return cli_fail(-EIO, "cannot make a key");
		cairn_sign_hex(k.pub, hex);
		cairn_sign_release(&k);
		printf("%s\n", hex);
		return 0;
	}
	return cli_usage("remote", "'%s' is not add, ls, rm or keygen", argv[1]);
}
