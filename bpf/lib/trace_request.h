/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether an entry program's run is a trace the agent asked for
 * (contract.h: MBR_TRACE_REQUEST_MAGIC, the token in skb->cb). Read before
 * the context overwrites skb->cb. Whatever a packet on the wire brings in
 * skb->cb, it cannot know the token, so it is never taken for a trace.
 */
#ifndef MBR_LIB_TRACE_REQUEST_H
#define MBR_LIB_TRACE_REQUEST_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/trace.h"

/* MBR_CTX_F_TRACE for the agent's trace run, else 0. */
static __always_inline __u32 trace_requested(const struct __sk_buff *skb)
{
	if (skb->cb[4] != MBR_TRACE_REQUEST_MAGIC)
		return 0;
	const struct mbr_trace_record *record = membrane_trace_record();
	if (!record || record->token == 0)
		return 0;
	const __u64 token = ((__u64)skb->cb[1] << 32) | skb->cb[0];
	return token == record->token ? MBR_CTX_F_TRACE : 0;
}

#endif /* MBR_LIB_TRACE_REQUEST_H */
