/* SPDX-License-Identifier: Apache-2.0 */
/* Per-reason packet counters shared by the core and modules (per CPU). */
#ifndef MEMBRANE_STATS_H
#define MEMBRANE_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_stats_v1 SEC(".maps");

/*
 * Counts this packet under `reason`; in a trace run (membrane/trace.h) the
 * reason goes to the trace record instead, so that the trace shows what the
 * stage did and the counters stay true. Stages count with this (SDK 1.6).
 */
static __always_inline void membrane_count(struct __sk_buff *skb, __u32 reason)
{
	if (membrane_tracing(skb)) {
		struct mbr_trace_record *record = membrane_trace_record();
		if (record)
			record->counted = reason + 1;
		return;
	}
	__u64 *count = bpf_map_lookup_elem(&mbr_stats_v1, &reason);
	if (count)
		*count += 1;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_VERDICT_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_policy_verdicts_v1 SEC(".maps");

/* SDK 1.6. A policy stage's verdict (enum membrane_verdict_counter); nothing in a trace run. */
static __always_inline void membrane_count_verdict(struct __sk_buff *skb, __u32 counter)
{
	if (membrane_tracing(skb))
		return;
	__u64 *count = bpf_map_lookup_elem(&mbr_policy_verdicts_v1, &counter);
	if (count)
		*count += 1;
}

/* Before SDK 1.6: counts even in a trace run. Kept for modules built against 1.5; use membrane_count(). */
static __always_inline void membrane_stat_inc(__u32 reason)
{
	__u64 *count = bpf_map_lookup_elem(&mbr_stats_v1, &reason);
	if (count)
		*count += 1;
}

#endif /* MEMBRANE_STATS_H */
