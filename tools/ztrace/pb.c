/* SPDX-License-Identifier: BSD-3-Clause */
/* pb.c - protobuf wire-format encoder (see pb.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

void pb_init(struct pb_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void pb_free(struct pb_buf *b)
{
	free(b->data);
	pb_init(b);
}

static int pb_reserve(struct pb_buf *b, size_t n)
{
	size_t cap;
	uint8_t *d;

	if (b->err)
		return b->err;
	if (b->len + n <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n)
		cap *= 2;
	d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void pb_raw(struct pb_buf *b, const void *p, size_t n)
{
	if (!n || pb_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pb_varint(struct pb_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	pb_raw(b, tmp, n);
}

void pb_key(struct pb_buf *b, uint32_t field, int wire_type)
{
	pb_varint(b, (uint64_t)field << 3 | wire_type);
}

void pb_uint(struct pb_buf *b, uint32_t field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, PB_VARINT);
	pb_varint(b, v);
}

void pb_int(struct pb_buf *b, uint32_t field, int64_t v)
{
	pb_uint(b, field, (uint64_t)v);
}

void pb_bool(struct pb_buf *b, uint32_t field, int v)
{
	pb_uint(b, field, v ? 1 : 0);
}

void pb_bytes(struct pb_buf *b, uint32_t field, const void *p, size_t n)
{
	pb_key(b, field, PB_LEN);
	pb_varint(b, n);
	pb_raw(b, p, n);
}

void pb_string(struct pb_buf *b, uint32_t field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

void pb_message(struct pb_buf *b, uint32_t field, const struct pb_buf *m)
{
	if (m->err) {
		b->err = m->err;
		return;
	}
	pb_bytes(b, field, m->data, m->len);
}

void pb_packed(struct pb_buf *b, uint32_t field, const uint64_t *v, size_t n)
{
	struct pb_buf tmp;
	size_t i;

	if (!n)
		return;
	pb_init(&tmp);
	for (i = 0; i < n; i++)
		pb_varint(&tmp, v[i]);
	pb_message(b, field, &tmp);
	pb_free(&tmp);
}
