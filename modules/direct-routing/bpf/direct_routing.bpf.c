// SPDX-License-Identifier: Apache-2.0
/*
 * direct-routing's pipeline stage (MBR_STAGE_ROUTING): a packet from a local
 * pod to a prefix another node holds is routed by the kernel's FIB (the
 * module installed "<pod CIDR> via <node IP>") and sent straight out of the
 * device the FIB names, the neighbour subsystem filling in the MACs. No
 * encapsulation: the receiving node's device entry program (mbr_from_netdev)
 * delivers it. Everything else goes on down the pipeline untouched.
 */
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"
#include "membrane/routing.h"
#include "membrane/stats.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/*
 * A router's one change to the packet: TTL down by one, checksum fixed up
 * incrementally. The TTL shares a 16-bit word with the protocol.
 */
static __always_inline int decrement_ttl(struct __sk_buff *skb, const struct membrane_remote_route *route)
{
	const __u32 ttl_offset = route->l3_offset + offsetof(struct iphdr, ttl);
	const __u32 check_offset = route->l3_offset + offsetof(struct iphdr, check);
	const __be16 before = bpf_htons(((__u16)route->ttl << 8) | route->protocol);
	const __u8 ttl = route->ttl - 1;
	const __be16 after = bpf_htons(((__u16)ttl << 8) | route->protocol);

	if (bpf_l3_csum_replace(skb, check_offset, before, after, sizeof(__u16)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ttl_offset, &ttl, sizeof(ttl), 0);
}

SEC("tc")
int direct_routing_stage(struct __sk_buff *skb)
{
	struct membrane_remote_route route;

	if (!membrane_remote_route(skb, &route))
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);
	/* The stack answers an expiring packet with ICMP time exceeded. */
	if (route.ttl <= 1)
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);

	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.tos = route.tos,
		.l4_protocol = route.protocol,
		.tot_len = route.tot_len,
		.ifindex = skb->ingress_ifindex,
		.ipv4_src = route.saddr,
		.ipv4_dst = route.daddr,
	};
	const long verdict = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* No neighbour yet is fine: bpf_redirect_neigh resolves it. */
	if (verdict != BPF_FIB_LKUP_RET_SUCCESS && verdict != BPF_FIB_LKUP_RET_NO_NEIGH)
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);

	if (decrement_ttl(skb, &route) < 0) {
		membrane_stat_inc(MBR_STAT_DROP_INVALID);
		return TC_ACT_SHOT;
	}
	/* The lookup left the next hop (the node's IP) in ipv4_dst. */
	struct bpf_redir_neigh next_hop = {
		.nh_family = AF_INET,
		.ipv4_nh = fib.ipv4_dst,
	};
	membrane_stat_inc(MBR_STAT_FIB_FORWARDED);
	return bpf_redirect_neigh(fib.ifindex, &next_hop, sizeof(next_hop), 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
