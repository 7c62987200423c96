/* SPDX-License-Identifier: MIT */
/*
 * oci.c - what reading and writing OCI layouts share (see oci.h).
 */
#include <stdio.h>

#include "oci.h"

#define JSON_MAX_DEPTH 32

void oci_digest_finish(struct sha256_ctx *h, char *out)
{
	uint8_t d[SHA256_DIGEST_SIZE];

	sha256_digest(h, sizeof(d), d);
	memcpy(out, "sha256:", 7);
	for (size_t i = 0; i < sizeof(d); i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
}

bool oci_digest_valid(const char *d)
{
	if (strncmp(d, "sha256:", 7) || strlen(d) != OCI_DIGEST_LEN)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void oci_blob_path(const char *digest, char *out, size_t len)
{
	snprintf(out, len, "blobs/sha256/%s", digest + 7);
}

static bool alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool oci_ref_valid(const char *ref)
{
	const char *p = ref;

	/* component ("/" component)*; component: alnum+ (separator alnum+)* */
	for (;;) {
		if (!alnum(*p))
			return false;
		while (alnum(*p))
			p++;
		if (*p == '\0')
			return true;
		if (*p == '/') {
			p++;
			continue;
		}
		if (p[0] == '-' && p[1] == '-')
			p += 2;
		else if (strchr("-._:@+", *p))
			p++;
		else
			return false;
	}
}

struct json_object *oci_json_parse(const char *buf, size_t len, const char *what)
{
	struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	struct json_object *o;
	enum json_tokener_error jerr;
	size_t end;

	if (!tok) {
		cairn_err(-ENOMEM, "out of memory");
		return NULL;
	}
	if (len > INT32_MAX) {
		json_tokener_free(tok);
		cairn_err(-EFBIG, "%s is too large", what);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr == json_tokener_continue) {
		cairn_err(-EINVAL, "%s is not valid JSON: it ends too soon", what);
		return NULL;
	}
	if (!o || jerr != json_tokener_success) {
		cairn_err(-EINVAL, "%s is not valid JSON: %s at byte %zu", what,
			  json_tokener_error_desc(jerr), end);
		json_object_put(o);
		return NULL;
	}
	for (; end < len; end++) {
		if (!strchr(" \t\r\n", buf[end])) {
			cairn_err(-EINVAL, "%s is not valid JSON: something after the document at "
					   "byte %zu", what, end);
			json_object_put(o);
			return NULL;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		cairn_err(-EINVAL, "%s is not a JSON object", what);
		json_object_put(o);
		return NULL;
	}
	return o;
}

int oci_desc_parse(struct json_object *o, const char *what, struct oci_desc *d)
{
	struct json_object *mt, *dg, *sz, *ann, *ref;

	memset(d, 0, sizeof(*d));
	if (!json_object_is_type(o, json_type_object))
		return cairn_err(-EINVAL, "%s is not a JSON object", what);
	if (!json_object_object_get_ex(o, "mediaType", &mt) ||
	    !json_object_is_type(mt, json_type_string))
		return cairn_err(-EINVAL, "%s has no mediaType", what);
	if (!json_object_object_get_ex(o, "digest", &dg) ||
	    !json_object_is_type(dg, json_type_string))
		return cairn_err(-EINVAL, "%s has no digest", what);
	if (!json_object_object_get_ex(o, "size", &sz) || !json_object_is_type(sz, json_type_int) ||
	    json_object_get_int64(sz) < 0)
		return cairn_err(-EINVAL, "%s has no size (a non-negative integer)", what);
	if (strncmp(json_object_get_string(dg), "sha256:", 7) &&
	    strchr(json_object_get_string(dg), ':'))
		return cairn_err(-ENOTSUP, "%s: digest algorithm of '%.80s' is not supported "
					   "(sha256 is)", what, json_object_get_string(dg));
	if (!oci_digest_valid(json_object_get_string(dg)))
		return cairn_err(-EINVAL, "%s: '%.80s' is not a sha256 digest", what,
				 json_object_get_string(dg));
	d->media_type = json_object_get_string(mt);
	memcpy(d->digest, json_object_get_string(dg), OCI_DIGEST_LEN + 1);
	d->size = json_object_get_int64(sz);
	if (json_object_object_get_ex(o, "annotations", &ann) &&
	    json_object_is_type(ann, json_type_object) &&
	    json_object_object_get_ex(ann, OCI_REF_ANNOTATION, &ref) &&
	    json_object_is_type(ref, json_type_string))
		d->ref = json_object_get_string(ref);
	return 0;
}
