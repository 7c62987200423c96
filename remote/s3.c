/* SPDX-License-Identifier: MIT */
/*
 * s3.c - the S3 client: a queue of requests driven through one libcurl
 * multi handle (see s3.h). libcurl's codes stop here.
 */
#include "s3.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#define S3_DEFAULT_TIMEOUT_MS 30000u
#define S3_DEFAULT_INFLIGHT 16u
#define S3_DEFAULT_ATTEMPTS 4u
#define S3_DEFAULT_MAX_LEN (64u << 20)
#define S3_ERROR_BODY_MAX 4096u
#define S3_BACKOFF_FIRST_MS 100
#define S3_BACKOFF_MAX_MS 5000
#define S3_BUFFER_SIZE (512 * 1024)
#define S3_MSG_LEN 320

/* SHA-256 of no bytes: the payload hash of requests without a body. */
static const char empty_sha256[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct xfer {
	struct cairn_s3 *s;
	struct xfer *next;          /* in the ready or the delayed list */
	struct xfer *rnext;         /* in the running list */
	CURL *easy;                 /* while running */
	struct curl_slist *headers;
	enum cairn_s3_method method;
	char *url;
	const uint8_t *body;
	size_t body_len, body_off;
	uint64_t range_off, range_len;
	size_t max_len;
	int64_t deadline_ns;
	int64_t not_before_ns;      /* a retry waits until then */
	unsigned attempts;
	struct cairn_buf resp;
	bool too_big;
	bool on_bucket;             /* the request names the bucket, no key */
	uint64_t total_size;        /* from Content-Range */
	char errbuf[CURL_ERROR_SIZE];
	char msg[S3_MSG_LEN];
	cairn_s3_done_fn done;
	void *arg;
};

struct cairn_s3 {
	CURLM *multi;
	char *endpoint, *bucket, *sigv4, *access, *secret, *ca, *name;
	unsigned timeout_ms, max_inflight, attempts;
	struct xfer *ready, *ready_tail; /* FIFO, waiting for a slot */
	struct xfer *delayed;            /* retries waiting for their time */
	struct xfer *active;             /* running (at most max_inflight) */
	size_t running, pending;
	CURL **pool;                     /* idle easy handles, reused */
	size_t npool, cappool;
	atomic_bool woken;
	uint64_t rng;
	struct cairn_s3_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t cairn_s3_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *dup_trim_slash(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return strndup(s, n);
}

int cairn_s3_new(const struct cairn_s3_config *c, struct cairn_s3 **out)
{
	struct cairn_s3 *s;

	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK)
		return cairn_err(-EIO, "cannot initialise libcurl: %s",
				 curl_easy_strerror(curl_init_result));
	if (!c->endpoint || (strncmp(c->endpoint, "http://", 7) != 0 &&
			     strncmp(c->endpoint, "https://", 8) != 0))
		return cairn_err(-EINVAL, "endpoint '%s' is not http://HOST[:PORT] or https://...",
				 c->endpoint ? c->endpoint : "");
	if (!c->bucket || !*c->bucket || !c->access_key || !c->secret_key)
		return cairn_err(-EINVAL, "a bucket and credentials are needed");
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->endpoint = dup_trim_slash(c->endpoint);
	s->bucket = strdup(c->bucket);
	s->access = strdup(c->access_key);
	s->secret = strdup(c->secret_key);
	s->ca = c->ca_file && *c->ca_file ? strdup(c->ca_file) : NULL;
	if (asprintf(&s->sigv4, "aws:amz:%s:s3", c->region ? c->region : "us-east-1") < 0)
		s->sigv4 = NULL;
	if (s->endpoint && s->bucket &&
	    asprintf(&s->name, "s3://%s at %s", s->bucket, s->endpoint) < 0)
		s->name = NULL;
	s->multi = curl_multi_init();
	if (!s->endpoint || !s->bucket || !s->access || !s->secret ||
	    (c->ca_file && *c->ca_file && !s->ca) || !s->sigv4 || !s->name || !s->multi) {
		cairn_s3_free(s);
		return -ENOMEM;
	}
	s->timeout_ms = c->timeout_ms ? c->timeout_ms : S3_DEFAULT_TIMEOUT_MS;
	s->max_inflight = c->max_inflight ? c->max_inflight : S3_DEFAULT_INFLIGHT;
	s->attempts = c->attempts ? c->attempts : S3_DEFAULT_ATTEMPTS;
	s->rng = (uint64_t)cairn_s3_clock_ns() ^ ((uint64_t)getpid() << 32);
	/* one connection per request in flight, all kept alive between requests */
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->max_inflight);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->max_inflight);
	*out = s;
	return 0;
}

static void xfer_free(struct xfer *x)
{
	curl_slist_free_all(x->headers);
	free(x->url);
	cairn_buf_release(&x->resp);
	free(x);
}

static void finish(struct xfer *x, int err, long status);

void cairn_s3_free(struct cairn_s3 *s)
{
	struct xfer *x;

	if (!s)
		return;
	while ((x = s->active)) {
		s->active = x->rnext;
		curl_multi_remove_handle(s->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
		s->running--;
		snprintf(x->msg, sizeof(x->msg), "cancelled");
		finish(x, -ECANCELED, 0);
	}
	while ((x = s->ready) || (x = s->delayed)) {
		if (x == s->ready)
			s->ready = x->next;
		else
			s->delayed = x->next;
		snprintf(x->msg, sizeof(x->msg), "cancelled");
		finish(x, -ECANCELED, 0);
	}
	for (size_t i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	free(s->pool);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	free(s->endpoint);
	free(s->bucket);
	free(s->sigv4);
	if (s->secret)
		explicit_bzero(s->secret, strlen(s->secret));
	free(s->access);
	free(s->secret);
	free(s->ca);
	free(s->name);
	free(s);
}

const struct cairn_s3_stats *cairn_s3_stats(const struct cairn_s3 *s)
{
	return &s->stats;
}

const char *cairn_s3_name(const struct cairn_s3 *s)
{
	return s->name;
}

size_t cairn_s3_pending(const struct cairn_s3 *s)
{
	return s->pending;
}

void cairn_s3_wakeup(struct cairn_s3 *s)
{
	atomic_store(&s->woken, true);
	curl_multi_wakeup(s->multi);
}

/* Appends key to b, percent-encoding all but unreserved characters and '/'. */
static int append_encoded(struct cairn_buf *b, const char *key, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		unsigned char c = *p;
		char e[3];
		int ret;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
			ret = cairn_buf_append(b, p, 1);
		} else {
			e[0] = '%';
			e[1] = hex[c >> 4];
			e[2] = hex[c & 15];
			ret = cairn_buf_append(b, e, 3);
		}
		if (ret)
			return ret;
	}
	return 0;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	struct sha256_ctx ctx;
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_init(&ctx);
	sha256_update(&ctx, len, data);
	sha256_digest(&ctx, sizeof(d), d);
	for (unsigned i = 0; i < sizeof(d); i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

static int add_header(struct curl_slist **l, const char *h)
{
	struct curl_slist *n = curl_slist_append(*l, h);

	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

int cairn_s3_submit(struct cairn_s3 *s, const struct cairn_s3_request *r)
{
	struct cairn_buf url = { 0 };
	char hash[65], hdr[128];
	struct xfer *x;
	int ret;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->s = s;
	x->method = r->method;
	x->body = r->body;
	x->body_len = r->body_len;
	x->range_off = r->range_off;
	x->range_len = r->range_len;
	x->max_len = r->max_len ? r->max_len : S3_DEFAULT_MAX_LEN;
	if (r->method == CAIRN_S3_GET && r->range_len && r->range_len < x->max_len)
		x->max_len = r->range_len;
	x->deadline_ns = r->deadline_ns;
	x->done = r->done;
	x->arg = r->arg;

	ret = cairn_buf_append(&url, s->endpoint, strlen(s->endpoint));
	ret = ret ?: cairn_buf_append(&url, "/", 1);
	ret = ret ?: append_encoded(&url, s->bucket, false);
	x->on_bucket = !r->key || !*r->key;
	if (!x->on_bucket) {
		ret = ret ?: cairn_buf_append(&url, "/", 1);
		ret = ret ?: append_encoded(&url, r->key, true);
	}
	if (r->query && *r->query) {
		ret = ret ?: cairn_buf_append(&url, "?", 1);
		ret = ret ?: cairn_buf_append(&url, r->query, strlen(r->query));
	}
	ret = ret ?: cairn_buf_append(&url, "", 1);
	if (ret)
		goto fail;
	x->url = (char *)url.data;
	url.data = NULL;

	if (r->method == CAIRN_S3_PUT && r->body_len)
		sha256_hex(r->body, r->body_len, hash);
	else
		memcpy(hash, empty_sha256, sizeof(hash));
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hash);
	/*
	 * (An empty "Expect:" to skip the 100-continue round trip would be
	 * signed by libcurl 7.88 but not sent: a bad signature.)
	 */
	ret = add_header(&x->headers, hdr);
	if (r->method == CAIRN_S3_PUT && r->if_none_match)
		ret = ret ?: add_header(&x->headers, "If-None-Match: *");
	if (ret)
		goto fail;

	if (s->ready_tail)
		s->ready_tail->next = x;
	else
		s->ready = x;
	s->ready_tail = x;
	s->pending++;
	return 0;
fail:
	cairn_buf_release(&url);
	xfer_free(x);
	return -ENOMEM;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t want = size * n, left = x->body_len - x->body_off;

	if (want > left)
		want = left;
	memcpy(buf, x->body + x->body_off, want);
	x->body_off += want;
	return want;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (size_t)off > x->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_off = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 300) {
		/* an error document: keep its start, for the S3 error code */
		size_t room = S3_ERROR_BODY_MAX - x->resp.len;

		if (x->resp.len < S3_ERROR_BODY_MAX &&
		    cairn_buf_append(&x->resp, data, len < room ? len : room))
			return 0;
		return len;
	}
	if (x->method != CAIRN_S3_GET)
		return len;
	if (len > x->max_len - x->resp.len) {
		x->too_big = true;
		return 0; /* CURLE_WRITE_ERROR */
	}
	if (cairn_buf_append(&x->resp, data, len))
		return 0;
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	static const char cr[] = "content-range:";
	char line[160];
	const char *slash;

	if (len >= sizeof(cr) - 1 && len < sizeof(line) && strncasecmp(data, cr, sizeof(cr) - 1) == 0) {
		memcpy(line, data, len);
		line[len] = '\0';
		slash = strchr(line, '/');
		if (slash)
			x->total_size = strtoull(slash + 1, NULL, 10);
	}
	return len;
}

static CURL *easy_get(struct cairn_s3 *s)
{
	CURL *e;

	if (s->npool) {
		e = s->pool[--s->npool];
		curl_easy_reset(e);
		return e;
	}
	return curl_easy_init();
}

static void easy_put(struct cairn_s3 *s, CURL *e)
{
	if (s->npool == s->cappool) {
		size_t cap = s->cappool ? 2 * s->cappool : 16;
		CURL **p = realloc(s->pool, cap * sizeof(*p));

		if (!p) {
			curl_easy_cleanup(e);
			return;
		}
		s->pool = p;
		s->cappool = cap;
	}
	s->pool[s->npool++] = e;
}

/* Starts one try of x. 0, or -errno (x is then finished by the caller). */
static int start(struct cairn_s3 *s, struct xfer *x)
{
	CURL *e = easy_get(s);
	char range[64];
	long stall_s = (long)((s->timeout_ms + 999) / 1000);
	CURLcode cc = CURLE_OK;

	if (!e)
		return -ENOMEM;
	x->easy = e;
	x->attempts++;
	x->resp.len = 0;
	x->too_big = false;
	x->total_size = 0;
	x->body_off = 0;
	x->errbuf[0] = '\0';

#define SET(opt, val) \
	do { \
		if (cc == CURLE_OK) \
			cc = curl_easy_setopt(e, opt, val); \
	} while (0)
	SET(CURLOPT_URL, x->url);
	SET(CURLOPT_PRIVATE, (char *)x);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_BUFFERSIZE, (long)S3_BUFFER_SIZE);
	SET(CURLOPT_UPLOAD_BUFFERSIZE, (long)S3_BUFFER_SIZE);
	SET(CURLOPT_ERRORBUFFER, x->errbuf);
	SET(CURLOPT_AWS_SIGV4, s->sigv4);
	SET(CURLOPT_USERNAME, s->access);
	SET(CURLOPT_PASSWORD, s->secret);
	SET(CURLOPT_HTTPHEADER, x->headers);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
	/* no progress for the timeout: the try failed */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, stall_s);
	if (s->ca)
		SET(CURLOPT_CAINFO, s->ca);
	if (x->deadline_ns) {
		int64_t left = (x->deadline_ns - cairn_s3_clock_ns()) / 1000000;

		SET(CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
	}
	switch (x->method) {
	case CAIRN_S3_GET:
		if (x->range_len) {
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, x->range_off,
				 x->range_off + x->range_len - 1);
			SET(CURLOPT_RANGE, range);
		}
		break;
	case CAIRN_S3_PUT:
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, x);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_len);
		break;
	case CAIRN_S3_HEAD:
		SET(CURLOPT_NOBODY, 1L);
		break;
	case CAIRN_S3_DELETE:
		SET(CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	}
#undef SET
	if (cc != CURLE_OK || curl_multi_add_handle(s->multi, e) != CURLM_OK) {
		x->easy = NULL;
		curl_easy_cleanup(e);
		snprintf(x->msg, sizeof(x->msg), "libcurl refused the request: %s",
			 curl_easy_strerror(cc));
		return -EIO;
	}
	s->running++;
	x->rnext = s->active;
	s->active = x;
	return 0;
}

static void finish(struct xfer *x, int err, long status)
{
	struct cairn_s3 *s = x->s;
	struct cairn_s3_result r = {
		.err = err,
		.status = status,
		.msg = err ? x->msg : "",
		.size = x->total_size,
		.attempts = x->attempts,
	};

	if (err == 0 && x->method == CAIRN_S3_GET) {
		r.body = x->resp.data;
		r.len = x->resp.len;
		if (!x->range_len)
			r.size = x->resp.len;
		s->stats.bytes_received += x->resp.len;
	}
	if (err == 0 && x->method == CAIRN_S3_PUT)
		s->stats.bytes_sent += x->body_len;
	if (err == 0 && x->method == CAIRN_S3_HEAD) {
		curl_off_t cl = -1;

		if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
						 &cl) == CURLE_OK && cl >= 0)
			r.size = (uint64_t)cl;
	}
	s->stats.requests++;
	s->pending--;
	if (x->done)
		x->done(x->arg, &r);
	xfer_free(x);
}

/* The <Code> of an S3 error document, or "". */
static void s3_code(const struct cairn_buf *b, char *out, size_t cap)
{
	const char *p = b->data ? memmem(b->data, b->len, "<Code>", 6) : NULL;
	const char *end;
	size_t n;

	out[0] = '\0';
	if (!p)
		return;
	p += 6;
	end = memmem(p, b->len - (size_t)(p - (const char *)b->data), "</Code>", 7);
	if (!end)
		return;
	n = (size_t)(end - p);
	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
	out[n] = '\0';
}

static bool retryable_status(long status)
{
	return status == 429 || (status >= 500 && status <= 599);
}

static bool retryable_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

/* An HTTP error status as -errno and words. */
static int status_error(struct xfer *x, long status)
{
	char code[64];
	const char *what;
	int err;

	s3_code(&x->resp, code, sizeof(code));
	switch (status) {
	case 400:
		err = -EINVAL;
		what = "bad request";
		break;
	case 401:
	case 403:
		err = -EACCES;
		what = "access denied";
		if (strcmp(code, "SignatureDoesNotMatch") == 0)
			what = "access denied: wrong secret key";
		else if (strcmp(code, "InvalidAccessKeyId") == 0)
			what = "access denied: unknown access key";
		break;
	case 404:
		err = -ENOENT;
		/* a HEAD answer has no document: what it named tells */
		what = strcmp(code, "NoSuchBucket") == 0 || (!*code && x->on_bucket) ?
			       "no such bucket" : "no such object";
		break;
	case 409:
	case 412:
		err = -EEXIST;
		what = status == 412 ? "it exists already" : "conflict";
		break;
	case 416:
		err = -ERANGE;
		what = "range not satisfiable";
		break;
	default:
		err = -EIO;
		what = status >= 500 ? "server error" : "unexpected answer";
		break;
	}
	snprintf(x->msg, sizeof(x->msg), "%s (HTTP %ld%s%s)", what, status, *code ? " " : "",
		 code);
	return err;
}

static int curl_error(struct xfer *x, CURLcode cc)
{
	const char *words = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
	int err;

	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		err = -ECONNREFUSED;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		err = -ETIMEDOUT;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		err = -EHOSTUNREACH;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
		err = -EPROTO;
		break;
	case CURLE_WRITE_ERROR:
		err = x->too_big ? -EFBIG : -ENOMEM;
		break;
	case CURLE_OUT_OF_MEMORY:
		err = -ENOMEM;
		break;
	default:
		err = -EIO;
		break;
	}
	if (x->too_big)
		snprintf(x->msg, sizeof(x->msg), "the answer is larger than %zu bytes", x->max_len);
	else
		snprintf(x->msg, sizeof(x->msg), "%s", words);
	return err;
}

/* Backoff before try n + 1: 100 ms doubling, jittered by +-50%, at most 5 s. */
static int64_t backoff_ns(struct cairn_s3 *s, unsigned tries)
{
	int64_t ms = S3_BACKOFF_FIRST_MS;

	for (unsigned i = 1; i < tries && ms < S3_BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > S3_BACKOFF_MAX_MS)
		ms = S3_BACKOFF_MAX_MS;
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	ms = ms / 2 + (int64_t)(s->rng % (uint64_t)(ms + 1));
	return ms * 1000000;
}

/* A try ended: finish x, or put it back for another try. */
static void ended(struct cairn_s3 *s, struct xfer *x, CURLcode cc)
{
	long status = 0, connects = 0;
	bool retry = false;
	int err = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK)
		s->stats.connects += (uint64_t)connects;
	if (cc != CURLE_OK) {
		err = curl_error(x, cc);
		retry = retryable_curl(cc) && !x->too_big;
	} else if (status >= 200 && status < 300) {
		if (x->method == CAIRN_S3_GET && x->range_len && status != 206 &&
		    x->range_off != 0) {
			err = -EIO;
			snprintf(x->msg, sizeof(x->msg), "the server ignored a byte range (HTTP %ld)",
				 status);
		}
	} else {
		err = status_error(x, status);
		retry = retryable_status(status);
	}
	if (err == 0 || !retry || x->attempts >= s->attempts) {
		finish(x, err, status);
		return;
	}
	x->not_before_ns = cairn_s3_clock_ns() + backoff_ns(s, x->attempts);
	if (x->deadline_ns && x->not_before_ns >= x->deadline_ns) {
		if (err != -ETIMEDOUT)
			snprintf(x->msg + strlen(x->msg), sizeof(x->msg) - strlen(x->msg),
				 "; no time left to try again");
		finish(x, err, status);
		return;
	}
	s->stats.retries++;
	x->easy = NULL;
	x->next = s->delayed;
	s->delayed = x;
}

/* Starts what may start: ready requests and retries whose time has come. */
static void start_some(struct cairn_s3 *s)
{
	int64_t now = 0;

	for (struct xfer **pp = &s->delayed; *pp && s->running < s->max_inflight;) {
		struct xfer *x = *pp;

		if (!now)
			now = cairn_s3_clock_ns();
		if (x->not_before_ns > now) {
			pp = &x->next;
			continue;
		}
		*pp = x->next;
		x->next = NULL;
		if (x->deadline_ns && now >= x->deadline_ns) {
			snprintf(x->msg, sizeof(x->msg), "timed out");
			finish(x, -ETIMEDOUT, 0);
		} else if (start(s, x)) {
			finish(x, -EIO, 0);
		}
	}
	while (s->ready && s->running < s->max_inflight) {
		struct xfer *x = s->ready;

		s->ready = x->next;
		if (!s->ready)
			s->ready_tail = NULL;
		x->next = NULL;
		if (x->deadline_ns && cairn_s3_clock_ns() >= x->deadline_ns) {
			snprintf(x->msg, sizeof(x->msg), "timed out before it could start");
			finish(x, -ETIMEDOUT, 0);
		} else if (start(s, x)) {
			finish(x, -EIO, 0);
		}
	}
}

static void collect(struct cairn_s3 *s)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left))) {
		struct xfer *x;
		char *priv = NULL;
		CURL *e;

		if (m->msg != CURLMSG_DONE)
			continue;
		e = m->easy_handle;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		x = (struct xfer *)priv;
		curl_multi_remove_handle(s->multi, e);
		s->running--;
		for (struct xfer **pp = &s->active; *pp; pp = &(*pp)->rnext) {
			if (*pp == x) {
				*pp = x->rnext;
				break;
			}
		}
		x->rnext = NULL;
		ended(s, x, m->data.result); /* x is finished or waits for a retry */
		easy_put(s, e);
	}
}

/* Milliseconds until the next delayed retry may start, or -1. */
static long next_retry_ms(const struct cairn_s3 *s)
{
	int64_t now = cairn_s3_clock_ns(), best = -1;

	for (const struct xfer *x = s->delayed; x; x = x->next) {
		int64_t d = x->not_before_ns - now;

		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	return best < 0 ? -1 : (long)((best + 999999) / 1000000);
}

/* The loop: until nothing is pending, *until is true, the time is up or a wakeup. */
static int loop(struct cairn_s3 *s, int timeout_ms, const bool *until)
{
	int64_t end = timeout_ms >= 0 ? cairn_s3_clock_ns() + (int64_t)timeout_ms * 1000000 : 0;

	for (;;) {
		int still = 0;
		long wait = 1000, r;
		CURLMcode mc;

		start_some(s);
		if (!s->pending || (until && *until))
			return 0;
		mc = curl_multi_perform(s->multi, &still);
		if (mc != CURLM_OK)
			return cairn_err(-EIO, "libcurl: %s", curl_multi_strerror(mc));
		collect(s);
		start_some(s);
		if (!s->pending || (until && *until))
			return 0;
		if (atomic_exchange(&s->woken, false))
			return 0;
		if (end) {
			int64_t left = (end - cairn_s3_clock_ns()) / 1000000;

			if (left <= 0)
				return 0;
			if (left < wait)
				wait = (long)left;
		}
		r = next_retry_ms(s);
		if (r >= 0 && r < wait)
			wait = r;
		if (s->running == 0 && !s->ready) {
			/* only retries waiting for their time */
			if (wait > 0) {
				struct timespec ts = { wait / 1000, (wait % 1000) * 1000000 };

				nanosleep(&ts, NULL);
			}
			continue;
		}
		mc = curl_multi_poll(s->multi, NULL, 0, (int)wait, NULL);
		if (mc != CURLM_OK)
			return cairn_err(-EIO, "libcurl: %s", curl_multi_strerror(mc));
	}
}

int cairn_s3_run(struct cairn_s3 *s, int timeout_ms)
{
	return loop(s, timeout_ms, NULL);
}

/* The synchronous helpers: one request, run until it is done. */
struct sync {
	bool done;
	int err;
	char msg[S3_MSG_LEN];
	struct cairn_buf *out;
	uint64_t size;
};

static void sync_done(void *arg, const struct cairn_s3_result *r)
{
	struct sync *y = arg;

	y->done = true;
	y->err = r->err;
	y->size = r->size;
	snprintf(y->msg, sizeof(y->msg), "%s", r->msg);
	if (r->err == 0 && y->out && r->len && cairn_buf_append(y->out, r->body, r->len))
		y->err = -ENOMEM;
}

static const char *method_name(enum cairn_s3_method m)
{
	switch (m) {
	case CAIRN_S3_GET:
		return "GET";
	case CAIRN_S3_PUT:
		return "PUT";
	case CAIRN_S3_HEAD:
		return "HEAD";
	case CAIRN_S3_DELETE:
		return "DELETE";
	}
	return "?";
}

static int sync_request(struct cairn_s3 *s, struct cairn_s3_request *r, struct sync *y)
{
	int ret;

	r->done = sync_done;
	r->arg = y;
	ret = cairn_s3_submit(s, r);
	if (ret)
		return ret;
	while (!y->done) {
		ret = loop(s, -1, &y->done);
		if (ret)
			return ret;
	}
	if (y->err && (!r->key || !*r->key))
		return cairn_err(y->err, "bucket '%s': %s", s->bucket, y->msg);
	if (y->err)
		return cairn_err(y->err, "%s %s/%s: %s", method_name(r->method), s->bucket, r->key,
				 y->msg);
	return 0;
}

int cairn_s3_get(struct cairn_s3 *s, const char *key, size_t max_len, struct cairn_buf *out)
{
	struct cairn_s3_request r = { .method = CAIRN_S3_GET, .key = key, .max_len = max_len };
	struct sync y = { .out = out };

	return sync_request(s, &r, &y);
}

int cairn_s3_put(struct cairn_s3 *s, const char *key, const void *body, size_t len,
		 bool if_none_match)
{
	struct cairn_s3_request r = {
		.method = CAIRN_S3_PUT,
		.key = key,
		.body = body,
		.body_len = len,
		.if_none_match = if_none_match,
	};
	struct sync y = { 0 };

	return sync_request(s, &r, &y);
}

int cairn_s3_head(struct cairn_s3 *s, const char *key, uint64_t *size)
{
	struct cairn_s3_request r = { .method = CAIRN_S3_HEAD, .key = key };
	struct sync y = { 0 };
	int ret = sync_request(s, &r, &y);

	if (ret == 0 && size)
		*size = y.size;
	return ret;
}

int cairn_s3_delete(struct cairn_s3 *s, const char *key)
{
	struct cairn_s3_request r = { .method = CAIRN_S3_DELETE, .key = key };
	struct sync y = { 0 };
	int ret = sync_request(s, &r, &y);

	return ret == -ENOENT ? 0 : ret;
}

int cairn_s3_bucket(struct cairn_s3 *s, bool create)
{
	/* a listing of nothing: unlike HEAD, its errors come with S3's error code */
	struct cairn_s3_request r = { .method = CAIRN_S3_GET, .query = "list-type=2&max-keys=0" };
	struct sync y = { 0 };
	int ret = sync_request(s, &r, &y);

	if (ret != -ENOENT || !create)
		return ret;
	cairn_err_clear();
	r = (struct cairn_s3_request){ .method = CAIRN_S3_PUT };
	y = (struct sync){ 0 };
	ret = sync_request(s, &r, &y);
	if (ret == -EEXIST) { /* made by someone else meanwhile: is it ours to use? */
		cairn_err_clear();
		r = (struct cairn_s3_request){ .method = CAIRN_S3_GET,
					       .query = "list-type=2&max-keys=0" };
		y = (struct sync){ 0 };
		ret = sync_request(s, &r, &y);
	}
	return ret;
}

/*
 * ListObjectsV2 answers, read with care: the text between <tag> and </tag>
 * inside [p, end), XML entities decoded, into out. Returns the position after
 * the closing tag, or NULL when there is none.
 */
static const char *xml_text(const char *p, const char *end, const char *tag, char *out,
			    size_t cap, bool *bad)
{
	char open[40], close[40];
	const char *a, *b;
	size_t n = 0;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(p, (size_t)(end - p), open, strlen(open));
	if (!a)
		return NULL;
	a += strlen(open);
	b = memmem(a, (size_t)(end - a), close, strlen(close));
	if (!b)
		return NULL;
	for (const char *q = a; q < b; q++) {
		char c = *q;

		if (c == '&') {
			static const struct { const char *e; char c; } ents[] = {
				{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
				{ "&quot;", '"' }, { "&apos;", '\'' },
			};
			bool found = false;

			for (size_t i = 0; i < ARRAY_SIZE(ents); i++) {
				size_t el = strlen(ents[i].e);

				if ((size_t)(b - q) >= el && memcmp(q, ents[i].e, el) == 0) {
					c = ents[i].c;
					q += el - 1;
					found = true;
					break;
				}
			}
			if (!found)
				*bad = true;
		}
		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f || n + 1 >= cap) {
			*bad = true;
			break;
		}
		out[n++] = c;
	}
	out[n] = '\0';
	return b + strlen(close);
}

static int append_param(struct cairn_buf *q, const char *name, const char *value)
{
	int ret = 0;

	if (q->len)
		ret = cairn_buf_append(q, "&", 1);
	ret = ret ?: cairn_buf_append(q, name, strlen(name));
	ret = ret ?: cairn_buf_append(q, "=", 1);
	ret = ret ?: append_encoded(q, value, false);
	return ret;
}

#define S3_KEY_MAX 1024

int cairn_s3_list(struct cairn_s3 *s, const char *prefix, const char *start_after,
		  cairn_s3_list_fn fn, void *arg)
{
	cleanup_free char *token = NULL;
	char key[S3_KEY_MAX + 1], num[32], trunc[8];
	int ret = 0;

	for (;;) {
		struct cairn_buf q = { 0 }, body = { 0 };
		struct cairn_s3_request r = { .method = CAIRN_S3_GET, .max_len = 16u << 20 };
		struct sync y = { .out = &body };
		const char *p, *end, *c;
		bool bad = false;

		/* parameters in canonical (sorted) order: SigV4 signs them as sent */
		if (token)
			ret = append_param(&q, "continuation-token", token);
		ret = ret ?: append_param(&q, "list-type", "2");
		if (prefix && *prefix)
			ret = ret ?: append_param(&q, "prefix", prefix);
		if (!token && start_after && *start_after)
			ret = ret ?: append_param(&q, "start-after", start_after);
		ret = ret ?: cairn_buf_append(&q, "", 1);
		if (ret) {
			cairn_buf_release(&q);
			return -ENOMEM;
		}
		r.query = (const char *)q.data;
		ret = sync_request(s, &r, &y);
		cairn_buf_release(&q);
		if (ret) {
			cairn_buf_release(&body);
			return ret;
		}
		p = (const char *)body.data;
		end = p + body.len;
		while (p && (c = memmem(p, (size_t)(end - p), "<Contents>", 10))) {
			const char *ce = memmem(c, (size_t)(end - c), "</Contents>", 11);

			if (!ce) {
				bad = true;
				break;
			}
			if (!xml_text(c, ce, "Key", key, sizeof(key), &bad) ||
			    !xml_text(c, ce, "Size", num, sizeof(num), &bad) || bad) {
				bad = true;
				break;
			}
			ret = fn(arg, key, strtoull(num, NULL, 10));
			if (ret) {
				cairn_buf_release(&body);
				return ret;
			}
			p = ce + 11;
		}
		trunc[0] = '\0';
		if (body.data)
			xml_text((const char *)body.data, end, "IsTruncated", trunc, sizeof(trunc),
				 &bad);
		free(token);
		token = NULL;
		if (!bad && strcmp(trunc, "true") == 0) {
			char t[S3_KEY_MAX + 1];

			if (xml_text((const char *)body.data, end, "NextContinuationToken", t,
				     sizeof(t), &bad) && !bad && *t)
				token = strdup(t);
			if (!token)
				bad = true;
		}
		cairn_buf_release(&body);
		if (bad)
			return cairn_err(-EIO, "list %s/%s: the answer does not parse", s->bucket,
					 prefix ? prefix : "");
		if (!token)
			return 0;
	}
}
