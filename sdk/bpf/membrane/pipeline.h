/* SPDX-License-Identifier: Apache-2.0 */
/*
 * BPF side of the pipeline: the shared prog array and the hand-over to the
 * next stage (the context accessors are in membrane/ctx.h, included here).
 * Include from tc (sched_cls) programs only.
 */
#ifndef MEMBRANE_PIPELINE_H
#define MEMBRANE_PIPELINE_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/ctx.h"
#include "membrane/monitor.h"
#include "membrane/stats.h"
#include "membrane/trace.h"

/* Pinned by name, so every object that includes this header shares one array. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MBR_STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_pipe_v1 SEC(".maps");

/*
 * Each stage's empty-slot verdict (contract.h: enum membrane_stage_verdict),
 * written by the agent when a module fills the slot; pinned, so it holds
 * while the agent is down. A stage nobody declared is 0: pass-through.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MBR_STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_stage_verdicts_v1 SEC(".maps");

static __always_inline int membrane_stage_fail_closed(__u32 stage)
{
	const __u32 *verdict = bpf_map_lookup_elem(&mbr_stage_verdicts_v1, &stage);
	return verdict && *verdict == MBR_STAGE_FAIL_CLOSED;
}

/*
 * Tail-call the first filled slot after `current` (a compile-time constant in
 * each stage). bpf_tail_call returns only when the slot is empty: then the
 * stage's empty-slot verdict decides, so an unloaded or quarantined security
 * stage drops instead of allowing; a pass-through stage is skipped. Past the
 * last slot the packet passes to the stack. Both outcomes are counted here
 * rather than in the entry program: once a stage has run, the entry program
 * never regains control (a tail call does not return).
 */
static __always_inline int membrane_run_from(struct __sk_buff *skb, const __u32 first)
{
	int missing = 0;
	/* A trace run (membrane/trace.h) stops here: the agent runs the next filled slot itself. */
	if (membrane_tracing(skb)) {
		skb->cb[3] = (skb->cb[3] & 0xffff) | (first << 16);
		return MBR_TRACE_HANDED_ON;
	}
#pragma unroll
	for (__u32 stage = first; stage < MBR_STAGE_MAX; stage++) {
		skb->cb[3] = (skb->cb[3] & 0xffff) | (stage << 16);
		bpf_tail_call(skb, &mbr_pipe_v1, stage);
		if (membrane_stage_fail_closed(stage)) {
			missing = 1;
			break;
		}
	}
	/* Reported once, past the loop: the report's code is not unrolled with it. */
	if (missing)
		return membrane_report_drop(skb, MBR_STAT_DROP_STAGE_MISSING, 0);
	membrane_count(skb, MBR_STAT_PIPELINE_DONE);
	return TC_ACT_OK;
}

static __always_inline int membrane_next_stage(struct __sk_buff *skb, const __u32 current)
{
	return membrane_run_from(skb, current + 1);
}

#endif /* MEMBRANE_PIPELINE_H */
