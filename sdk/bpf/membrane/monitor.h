/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SDK 1.5. Events for the agent's flow monitor (`membranectl monitor`): one
 * BPF ring buffer the core owns and every stage may write to, pinned like the
 * other shared maps. The report path never waits: a full buffer drops the
 * event and counts it in mbr_events_lost_v1 (per type); the agent sets how
 * often each type is reported (mbr_event_sampling_v1: 0 never, 1 always, N
 * one in N, chosen at random).
 *
 * For pipeline stages and the core's entry programs only: the context is
 * read from skb->cb, which only they fill.
 *
 * A stage reports with membrane_report_drop() (it also counts the reason in
 * the stats map and returns TC_ACT_SHOT), or membrane_report() for a verdict
 * or a trace point. The event carries what the context knows (identities,
 * direction, stage) and what the packet says (addresses, ports, protocol,
 * TCP flags), so it reads without the packet.
 */
#ifndef MEMBRANE_MONITOR_H
#define MEMBRANE_MONITOR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/conntrack.h"
#include "membrane/ctx.h"
#include "membrane/stats.h"
#include "membrane/trace.h"

#define MBR_EVENTS_RING_BYTES (1u << 20) /* 18,724 events: 48 bytes each and an 8-byte record header */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, MBR_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_events_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MBR_EVENT_TYPES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_event_sampling_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MBR_EVENT_TYPES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_events_lost_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_event_limit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_event_limit_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_event_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_event_budget_v1 SEC(".maps");

static __always_inline void membrane_event_lost(__u32 type)
{
	__u64 *lost = bpf_map_lookup_elem(&mbr_events_lost_v1, &type);
	if (lost)
		*lost += 1;
}

/*
 * Takes one event from this CPU's bucket (a token bucket refilled at
 * mbr_event_limit_v1's rate, holding at most its burst); 0 when it is empty.
 */
static __always_inline int membrane_event_budget(void)
{
	const __u32 zero = 0;
	const struct mbr_event_limit *limit = bpf_map_lookup_elem(&mbr_event_limit_v1, &zero);
	if (!limit || limit->events_per_second == 0)
		return 1;
	struct mbr_event_budget *budget = bpf_map_lookup_elem(&mbr_event_budget_v1, &zero);
	if (!budget)
		return 1;
	const __u64 rate = limit->events_per_second;
	const __u64 now = bpf_ktime_get_ns();
	const __u64 elapsed = now - budget->refilled_ns;
	if (elapsed >= MBR_NSEC_PER_SEC) {
		budget->tokens = limit->burst;
		budget->refilled_ns = now;
	} else {
		/* Whole tokens only; the time of the fraction left stays for the next refill. */
		const __u64 added = elapsed * rate / MBR_NSEC_PER_SEC;
		if (added) {
			budget->tokens = budget->tokens + added > limit->burst ? limit->burst : budget->tokens + added;
			budget->refilled_ns += added * MBR_NSEC_PER_SEC / rate;
		}
	}
	if (budget->tokens == 0)
		return 0;
	budget->tokens -= 1;
	return 1;
}

/* Whether this event of `type` is reported (the agent's sampling; until the agent sets it, none is). */
static __always_inline int membrane_event_sampled(__u32 type)
{
	const __u32 *every = bpf_map_lookup_elem(&mbr_event_sampling_v1, &type);
	if (!every || *every == 0)
		return 0;
	return *every == 1 || bpf_get_prandom_u32() % *every == 0;
}

static __always_inline void membrane_fill_event(struct mbr_event *event, struct __sk_buff *skb, __u8 type,
						__u16 reason, __u32 rule_id, __u8 verdict)
{
	__builtin_memset(event, 0, sizeof(*event));
	event->timestamp_ns = bpf_ktime_get_ns();
	event->type = type;
	event->reason = reason;
	event->rule_id = rule_id;
	event->verdict = verdict;
	event->ifindex = skb->ifindex;
	if (membrane_ctx_valid(skb)) {
		struct membrane_ctx ctx;
		membrane_ctx_load(skb, &ctx);
		event->src_identity = ctx.src_identity;
		event->dst_identity = ctx.dst_identity;
		event->direction = ctx.flags & 0xff;
		event->stage = ctx.stage;
	} else {
		event->stage = MBR_EVENT_STAGE_ENTRY;
	}
	struct membrane_flow flow;
	if (skb->protocol == bpf_htons(ETH_P_IP) && membrane_flow_of(skb, &flow) == 0) {
		event->saddr = flow.key.saddr;
		event->daddr = flow.key.daddr;
		event->sport = flow.key.sport;
		event->dport = flow.key.dport;
		event->protocol = flow.key.protocol;
		event->tcp_flags = flow.tcp_flags;
	}
}

/*
 * Reports an event about this packet. Identities, direction and stage come
 * from the context the entry program filled (zero if it did not). In a trace
 * run (membrane/trace.h) the event goes to the trace record, whatever the
 * sampling: the trace shows what the stage decided, and the monitor never
 * sees a packet that was not on the wire.
 */
static __always_inline void membrane_report(struct __sk_buff *skb, __u8 type, __u16 reason, __u32 rule_id,
					    __u8 verdict)
{
	if (membrane_tracing(skb)) {
		struct mbr_trace_record *record = membrane_trace_record();
		if (record) {
			membrane_fill_event(&record->event, skb, type, reason, rule_id, verdict);
			record->reported += 1;
		}
		return;
	}
	if (!membrane_event_sampled(type))
		return;
	if (!membrane_event_budget()) {
		membrane_event_lost(type);
		return;
	}
	struct mbr_event *event = bpf_ringbuf_reserve(&mbr_events_v1, sizeof(*event), 0);
	if (!event) {
		membrane_event_lost(type);
		return;
	}
	membrane_fill_event(event, skb, type, reason, rule_id, verdict);
	bpf_ringbuf_submit(event, 0);
}

/*
 * A packet leaves the pipeline forwarded, for `reason` (enum membrane_stat:
 * MBR_STAT_DELIVERED_LOCAL, MBR_STAT_TO_OVERLAY, MBR_STAT_FIB_FORWARDED):
 * counted, and reported as a trace point when [monitor] trace_sampling asks
 * for them (off by default: then only the sampling lookup is paid).
 */
static __always_inline void membrane_report_forward(struct __sk_buff *skb, __u16 reason)
{
	membrane_count(skb, reason);
	membrane_report(skb, MBR_EVENT_TRACE, reason, 0, 1);
}

/* Drops the packet for `reason` (enum membrane_stat): counted, reported. Returns TC_ACT_SHOT. */
static __always_inline int membrane_report_drop(struct __sk_buff *skb, __u16 reason, __u32 rule_id)
{
	membrane_count(skb, reason);
	membrane_report(skb, MBR_EVENT_DROP, reason, rule_id, 0);
	return TC_ACT_SHOT;
}

#endif /* MEMBRANE_MONITOR_H */
