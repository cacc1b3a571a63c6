/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pb.h - a small protobuf wire-format encoder, enough for profile.proto:
 * varints, packed varints, strings and nested messages, appended to one
 * growing buffer.
 *
 * Why not protobuf-c: the pprof profile is about ten fields of three wire
 * types, written and never read. An encoder of ~100 lines needs no
 * generated code, no .proto compiler in the build and no run-time library
 * on the machines ztrace runs on, and the tests read every profile back
 * with Go's own decoder (go tool pprof), which checks the encoding.
 *
 * A failed allocation sets buf->err (-ENOMEM) and later calls do nothing,
 * so callers check once at the end.
 */
#ifndef ZT_PB_H
#define ZT_PB_H

#include <stddef.h>
#include <stdint.h>

struct pb_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err; /* 0 or -ENOMEM */
};

/* Wire types. */
#define PB_VARINT 0
#define PB_LEN 2

void pb_init(struct pb_buf *b);
void pb_free(struct pb_buf *b);

void pb_raw(struct pb_buf *b, const void *p, size_t n);
void pb_varint(struct pb_buf *b, uint64_t v);
void pb_key(struct pb_buf *b, uint32_t field, int wire_type);
/* A varint field; proto3 leaves zero out, so does this. */
void pb_uint(struct pb_buf *b, uint32_t field, uint64_t v);
void pb_int(struct pb_buf *b, uint32_t field, int64_t v);
void pb_bool(struct pb_buf *b, uint32_t field, int v);
void pb_bytes(struct pb_buf *b, uint32_t field, const void *p, size_t n);
void pb_string(struct pb_buf *b, uint32_t field, const char *s);
/* A length-delimited field holding the bytes of another buffer. */
void pb_message(struct pb_buf *b, uint32_t field, const struct pb_buf *m);
/* A packed repeated varint field (int64 values as two's complement). */
void pb_packed(struct pb_buf *b, uint32_t field, const uint64_t *v, size_t n);

#endif /* ZT_PB_H */
