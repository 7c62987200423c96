/* SPDX-License-Identifier: MIT */
/*
 * cli_json.c - names in --json output. A JSON string is Unicode; a file
 * name is bytes. A name that is valid UTF-8 is written as it is (control
 * characters and newlines escaped by json-c, as JSON wants); any other is
 * written with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD, and its exact bytes go beside it, base64-encoded, under the same
 * key with "_base64" appended. So every listing parses with any JSON
 * reader, and nothing is lost.
 */
#include <json-c/json.h>

#include "cli.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_seq(const unsigned char *p, size_t len)
{
	unsigned c = p[0];
	size_t n;
	unsigned min, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, min = 0x80, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, min = 0x800, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool cli_utf8_valid(const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq(s + i, len - i)))
			return false;
	return true;
}

json_object *cli_json_text(const void *p, size_t len)
{
	static const char fffd[] = "\xef\xbf\xbd";
	const unsigned char *s = p;
	struct cairn_buf b = { 0 };
	json_object *o;

	if (cli_utf8_valid(p, len))
		return json_object_new_string_len(p, (int)len);
	for (size_t i = 0, n; i < len; i += n) {
		n = utf8_seq(s + i, len - i);
		if (n ? cairn_buf_append(&b, s + i, n) : cairn_buf_append(&b, fffd, 3))
			abort(); /* out of memory writing output: nothing sensible to print */
		n = n ? n : 1;
	}
	o = json_object_new_string_len((const char *)b.data, (int)b.len);
	cairn_buf_release(&b);
	return o;
}

json_object *cli_json_base64(const void *p, size_t len)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = p;
	size_t olen = (len + 2) / 3 * 4, o = 0;
	char *out = malloc(olen + 1);
	json_object *j;

	if (!out)
		abort(); /* as above */
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < len ? (uint32_t)s[i + 1] << 8 : 0) |
			     (i + 2 < len ? s[i + 2] : 0);

		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? abc[v & 63] : '=';
	}
	j = json_object_new_string_len(out, (int)o);
	free(out);
	return j;
}

void cli_json_add_bytes(json_object *obj, const char *key, const void *p, size_t len)
{
	json_object_object_add(obj, key, cli_json_text(p, len));
	if (!cli_utf8_valid(p, len)) {
		char k[64];

		snprintf(k, sizeof(k), "%s_base64", key);
		json_object_object_add(obj, k, cli_json_base64(p, len));
	}
}
