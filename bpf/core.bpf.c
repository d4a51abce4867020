// SPDX-License-Identifier: Apache-2.0
/*
 * The core entry programs: each parses nothing it does not need, fills the
 * per-packet context and hands the packet to the pipeline. Read it as the
 * table of contents of the datapath.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"
#include "membrane/stats.h"

static __always_inline void ctx_init(struct __sk_buff *skb, __u32 direction)
{
	struct membrane_ctx ctx = {
		.flags = direction,
		.magic = MBR_CTX_MAGIC,
	};
	membrane_ctx_store(skb, &ctx);
}

/* tc ingress of a node device (agent.devices). */
SEC("tc")
int mbr_from_netdev(struct __sk_buff *skb)
{
	ctx_init(skb, MBR_DIR_FROM_NETDEV);
	membrane_stat_inc(MBR_STAT_ENTRY_FROM_NETDEV);
	return membrane_run_from(skb, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
