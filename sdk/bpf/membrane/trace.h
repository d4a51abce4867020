/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SDK 1.6. Trace runs (`membranectl policy trace`, contract.h): the agent
 * runs a packet it built through the loaded entry program and then each
 * filled stage, one BPF_PROG_TEST_RUN each, handing every stage the context
 * and packet the previous one left. A trace run has no side effects:
 *   - membrane_next_stage() returns MBR_TRACE_HANDED_ON instead of the tail
 *     call (the agent runs the next filled stage itself);
 *   - membrane_count() and membrane_report() write the trace record instead
 *     of the counters and the ring buffer;
 *   - the entry programs look connection tracking up without refreshing it.
 * A stage that writes state of its own (connection tracking, a map of its
 * module) skips the write when membrane_tracing(skb): the trace must not
 * change what the next real packet meets. Lookups are fine (an LRU map
 * still marks what a lookup touches).
 */
#ifndef MEMBRANE_TRACE_H
#define MEMBRANE_TRACE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/ctx.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_trace_record);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_trace_v1 SEC(".maps");

/* Whether this run is a trace (the entry program said so in the context); never for a packet on the wire. */
static __always_inline int membrane_tracing(const struct __sk_buff *skb)
{
	/*
	 * Read through a fresh copy of the pointer: else clang may reuse an
	 * address like &skb->cb[2] it computed for an earlier read, and the
	 * verifier refuses a context access through a moved pointer.
	 */
	const struct __sk_buff *context = skb;
	asm volatile("" : "+r"(context));
	return context->cb[4] == MBR_CTX_MAGIC && (context->cb[2] & MBR_CTX_F_TRACE);
}

static __always_inline struct mbr_trace_record *membrane_trace_record(void)
{
	const __u32 zero = 0;
	return bpf_map_lookup_elem(&mbr_trace_v1, &zero);
}

#endif /* MEMBRANE_TRACE_H */
