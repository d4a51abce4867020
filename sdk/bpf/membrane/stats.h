/* SPDX-License-Identifier: Apache-2.0 */
/* Per-reason packet counters shared by the core and modules (per CPU). */
#ifndef MEMBRANE_STATS_H
#define MEMBRANE_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_stats_v1 SEC(".maps");

static __always_inline void membrane_stat_inc(__u32 reason)
{
	__u64 *count = bpf_map_lookup_elem(&mbr_stats_v1, &reason);
	if (count)
		*count += 1;
}

#endif /* MEMBRANE_STATS_H */
