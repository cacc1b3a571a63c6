/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * put.h - the scan test targets' output: write(2), never stdio, so that no
 * copy of what they print (addresses) is left in a stdio buffer for the
 * scanner to find.
 */
#ifndef ZS_TEST_PUT_H
#define ZS_TEST_PUT_H

#include <stdlib.h>
#include <unistd.h>

static inline void put_bytes(const char *s, size_t len)
{
	while (len) {
		ssize_t w = write(1, s, len);

		if (w <= 0)
			exit(2);
		s += w;
		len -= (size_t)w;
	}
}

#endif /* ZS_TEST_PUT_H */
