/* SPDX-License-Identifier: BSD-3-Clause */
/* ztrace_types.h - bpf/ztrace.h for user space, with the types it needs. */
#ifndef ZT_ZTRACE_TYPES_H
#define ZT_ZTRACE_TYPES_H

#include <linux/types.h>

#include "ztrace.h"

#endif /* ZT_ZTRACE_TYPES_H */
