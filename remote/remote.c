/* SPDX-License-Identifier: MIT */
/*
 * remote.c - addresses, credentials, connections and the marker object
 * (remote.h).
 */
#include "remote.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "layout.h"

static bool bucket_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int cairn_remote_url_parse(const char *url, char **bucket, char **prefix)
{
	const char *b, *slash;
	size_t bl, pl;

	if (strncmp(url, "s3://", 5) != 0)
		return cairn_err(-EINVAL, "'%s' is not s3://BUCKET[/PREFIX]", url);
	b = url + 5;
	slash = strchr(b, '/');
	bl = slash ? (size_t)(slash - b) : strlen(b);
	if (bl < 3 || bl > 63 || !isalnum((unsigned char)b[0]) ||
	    !isalnum((unsigned char)b[bl - 1]))
		return cairn_err(-EINVAL, "'%.*s' is not a bucket name (3 to 63 of a-z 0-9 . -)",
				 (int)bl, b);
	for (size_t i = 0; i < bl; i++)
		if (!bucket_char(b[i]))
			return cairn_err(-EINVAL, "'%.*s' is not a bucket name (3 to 63 of a-z 0-9 . -)",
					 (int)bl, b);
	pl = slash ? strlen(slash + 1) : 0;
	while (pl && slash[pl] == '/')
		pl--;
	if (pl > 512)
		return cairn_err(-EINVAL, "the prefix of '%s' is longer than 512 bytes", url);
	if (pl) {
		const char *p = slash + 1, *end = p + pl;

		while (p < end) {
			const char *seg = p;

			while (p < end && *p != '/') {
				if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
					return cairn_err(-EINVAL, "the prefix of '%s' may hold only "
								  "A-Z a-z 0-9 . _ - and /", url);
				p++;
			}
			if (p == seg || (p - seg == 1 && seg[0] == '.') ||
			    (p - seg == 2 && seg[0] == '.' && seg[1] == '.'))
				return cairn_err(-EINVAL, "the prefix of '%s' has an empty, '.' or "
							  "'..' part", url);
			if (p < end)
				p++;
		}
	}
	*bucket = strndup(b, bl);
	*prefix = NULL;
	if (!pl)
		*prefix = strdup("");
	else if (asprintf(prefix, "%.*s/", (int)pl, slash + 1) < 0)
		*prefix = NULL;
	if (!*bucket || !*prefix) {
		free(*bucket);
		free(*prefix);
		return -ENOMEM;
	}
	return 0;
}

int cairn_remote_endpoint_check(const char *e)
{
	const char *host;

	if (strncmp(e, "http://", 7) == 0)
		host = e + 7;
	else if (strncmp(e, "https://", 8) == 0)
		host = e + 8;
	else
		return cairn_err(-EINVAL, "endpoint '%s' is not http://HOST[:PORT] or "
					  "https://HOST[:PORT]", e);
	if (!*host || *host == '/' || strpbrk(e, " \t\r\n?#@"))
		return cairn_err(-EINVAL, "endpoint '%s' has no host, or characters an endpoint "
					  "cannot have", e);
	return 0;
}

/* "  key = value  " -> key and value, trimmed; false for other lines. */
static bool split_line(char *line, char **key, char **val)
{
	char *eq = strchr(line, '='), *end;

	if (!eq)
		return false;
	*eq = '\0';
	*key = line;
	*val = eq + 1;
	while (isspace((unsigned char)**key))
		(*key)++;
	while (isspace((unsigned char)**val))
		(*val)++;
	end = *key + strlen(*key);
	while (end > *key && isspace((unsigned char)end[-1]))
		*--end = '\0';
	end = *val + strlen(*val);
	while (end > *val && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return **key != '\0';
}

static int read_cred_file(const char *file, char **access, char **secret)
{
	cleanup_fd int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	char buf[8192], *line, *save = NULL;
	struct stat st;
	ssize_t n;
	char ebuf[128];

	if (fd < 0)
		return cairn_err(-errno, "cannot read credentials '%s': %s", file,
				 cairn_strerror(errno, ebuf, sizeof(ebuf)));
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return cairn_err(-EINVAL, "credentials '%s' are not a regular file", file);
	if (st.st_mode & 077)
		return cairn_err(-EPERM, "credentials '%s' are readable by others (mode %04o): "
					 "chmod 600 it", file, (unsigned)(st.st_mode & 07777));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return cairn_err(-EPERM, "credentials '%s' belong to uid %u, not to you or root",
				 file, (unsigned)st.st_uid);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	if (n == (ssize_t)sizeof(buf) - 1)
		return cairn_err(-EFBIG, "credentials '%s' are longer than %zu bytes", file,
				 sizeof(buf) - 2);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *k, *v;

		if (line[0] == '#' || line[0] == ';' || line[0] == '[' || !split_line(line, &k, &v))
			continue;
		if (strcasecmp(k, "aws_access_key_id") == 0 && !*access)
			*access = strdup(v);
		else if (strcasecmp(k, "aws_secret_access_key") == 0 && !*secret)
			*secret = strdup(v);
	}
	explicit_bzero(buf, sizeof(buf));
	if (!*access || !*secret || !**access || !**secret)
		return cairn_err(-EINVAL, "credentials '%s' lack aws_access_key_id or "
					  "aws_secret_access_key", file);
	return 0;
}

int cairn_remote_credentials(const char *file, unsigned flags, char **access, char **secret)
{
	const char *a, *s;
	int ret;

	*access = *secret = NULL;
	if (file && *file) {
		ret = read_cred_file(file, access, secret);
		if (ret) {
			free(*access);
			if (*secret)
				explicit_bzero(*secret, strlen(*secret));
			free(*secret);
			*access = *secret = NULL;
		}
		return ret;
	}
	if (flags & CAIRN_REMOTE_NO_ENV)
		return cairn_err(-EACCES, "no credentials file: a daemon reads credentials only "
					  "from one ('cairn remote add --credentials FILE')");
	a = getenv("AWS_ACCESS_KEY_ID");
	s = getenv("AWS_SECRET_ACCESS_KEY");
	if (!a || !*a || !s || !*s)
		return cairn_err(-EACCES, "no credentials: set AWS_ACCESS_KEY_ID and "
					  "AWS_SECRET_ACCESS_KEY, or give the remote a --credentials "
					  "file");
	*access = strdup(a);
	*secret = strdup(s);
	if (!*access || !*secret) {
		free(*access);
		free(*secret);
		return -ENOMEM;
	}
	return 0;
}

void cairn_remote_conn_free(struct cairn_remote_conn *c)
{
	if (!c)
		return;
	cairn_s3_free(c->s3);
	cairn_remote_rec_release(&c->rec);
	free(c->bucket);
	free(c->prefix);
	free(c);
}

int cairn_remote_connect(struct cairn_remote_rec *rec, unsigned flags,
			 struct cairn_remote_conn **out)
{
	struct cairn_remote_conn *c = calloc(1, sizeof(*c));
	char *access = NULL, *secret = NULL;
	struct cairn_s3_config cfg = { 0 };
	int ret;

	if (!c) {
		cairn_remote_rec_release(rec);
		return -ENOMEM;
	}
	c->rec = *rec;
	memset(rec, 0, sizeof(*rec));
	ret = cairn_remote_url_parse(c->rec.url, &c->bucket, &c->prefix);
	if (!ret)
		ret = cairn_remote_endpoint_check(c->rec.endpoint);
	if (!ret)
		ret = cairn_remote_credentials(c->rec.cred_file, flags, &access, &secret);
	if (!ret) {
		cfg.endpoint = c->rec.endpoint;
		cfg.bucket = c->bucket;
		cfg.region = getenv("AWS_REGION");
		cfg.access_key = access;
		cfg.secret_key = secret;
		cfg.ca_file = c->rec.ca_file;
		cfg.timeout_ms = c->rec.timeout_ms;
		ret = cairn_s3_new(&cfg, &c->s3);
	}
	free(access);
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
	if (ret) {
		cairn_remote_conn_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int cairn_remote_open(struct cairn_store *s, const char *name, unsigned flags,
		      struct cairn_remote_conn **out)
{
	struct cairn_remote_rec rec;
	struct cairn_txn *t;
	int ret = cairn_txn_begin(s, false, &t);

	if (ret)
		return ret;
	ret = cairn_remote_get(t, name, &rec);
	cairn_txn_abort(t);
	if (ret)
		return ret;
	return cairn_remote_connect(&rec, flags, out);
}

int cairn_remote_key(const struct cairn_remote_conn *c, const char *rest, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s%s", c->prefix, rest);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int cairn_remote_check_marker(struct cairn_remote_conn *c, const struct cairn_store_params *p,
			      bool create)
{
	struct cairn_buf b = { 0 };
	struct cairn_rmarker_disk m;
	char key[CAIRN_RKEY_MAX];
	int ret;

	ret = cairn_remote_key(c, CAIRN_RKEY_MARKER, key, sizeof(key));
	if (ret)
		return ret;
	ret = cairn_s3_get(c->s3, key, 4096, &b);
	if (ret == -ENOENT && create) {
		cairn_err_clear();
		cairn_rmarker_init(&m, p);
		ret = cairn_s3_put(c->s3, key, &m, sizeof(m), true);
		if (ret == -EEXIST) { /* another host made it meanwhile: check theirs */
			cairn_err_clear();
			ret = cairn_s3_get(c->s3, key, 4096, &b);
		} else {
			return ret;
		}
	}
	if (ret == -ENOENT && strstr(cairn_errmsg(), "no such bucket")) {
		cairn_buf_release(&b);
		return cairn_err(ret, "there is no bucket '%s' at %s (no such bucket)", c->bucket,
				 c->rec.endpoint);
	}
	if (ret == -ENOENT) {
		cairn_buf_release(&b);
		return cairn_err(ret, "%s holds no cairn store ('%s' is missing)",
				 cairn_s3_name(c->s3), key);
	}
	if (!ret)
		ret = cairn_rmarker_check(b.data, b.len, p);
	cairn_buf_release(&b);
	return ret;
}
