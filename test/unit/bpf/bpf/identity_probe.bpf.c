// SPDX-License-Identifier: Apache-2.0
/* A stage for the datapath tests (slot MBR_STAGE_OBSERVE): records, per
 * entry direction, the identities the entry program put in the context of
 * the last IPv4 packet, and how many it saw; then hands the packet on. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"

struct seen_identities {
	__u32 src_identity;
	__u32 dst_identity;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8); /* by enum membrane_direction */
	__type(key, __u32);
	__type(value, struct seen_identities);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_identities_v1 SEC(".maps");

SEC("tc")
int record_identities(struct __sk_buff *skb)
{
	__u32 direction = membrane_ctx_direction(skb);
	struct seen_identities *seen = bpf_map_lookup_elem(&mbr_test_identities_v1, &direction);
	/* IPv4 only: an ARP exchange after the packets a test sent would overwrite them with "unknown". */
	if (seen && membrane_ctx_valid(skb) && skb->protocol == bpf_htons(ETH_P_IP)) {
		seen->src_identity = membrane_ctx_src_identity(skb);
		seen->dst_identity = membrane_ctx_dst_identity(skb);
		__sync_fetch_and_add(&seen->packets, 1);
	}
	return membrane_next_stage(skb, MBR_STAGE_OBSERVE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
