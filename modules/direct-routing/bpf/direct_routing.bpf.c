// SPDX-License-Identifier: Apache-2.0
/*
 * direct-routing's pipeline stage (MBR_STAGE_ROUTING): a packet from a local
 * pod to a prefix another node holds is routed by the kernel's FIB (the
 * module installed "<pod CIDR> via <node IP>") and sent straight out of the
 * device the FIB names, the neighbour subsystem filling in the MACs. No
 * encapsulation: the receiving node's device entry program (mbr_from_netdev)
 * delivers it. Everything else goes on down the pipeline untouched.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"
#include "membrane/routing.h"
#include "membrane/stats.h"

/*
 * 1 when every packet the skb leaves as fits the egress device's MTU. A GSO
 * skb (a pod's TCP sends 64 KB at once over its veth) is many packets: what
 * must fit is each segment, not the super-packet's IP tot_len. The kernel
 * knows the segments (BPF_MTU_CHK_SEGS); for a plain skb it compares its
 * length, L2 header included, to MTU + header.
 */
static __always_inline int fits_egress_mtu(struct __sk_buff *skb, __u32 ifindex)
{
	__u32 mtu = 0;

	return bpf_check_mtu(skb, ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) == BPF_MTU_CHK_RET_SUCCESS;
}

SEC("tc")
int direct_routing_stage(struct __sk_buff *skb)
{
	struct membrane_remote_route route;

	if (!membrane_remote_route(skb, &route))
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);
	if (membrane_route_ttl_expires(&route))
		return membrane_route_ttl_exceeded(skb, &route);

	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.tos = route.tos,
		.l4_protocol = route.protocol,
		/* No tot_len: the FIB would hold a GSO super-packet's to the MTU and refuse it. */
		.ifindex = skb->ingress_ifindex,
		.ipv4_src = route.saddr,
		.ipv4_dst = route.daddr,
	};
	const long verdict = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	/* No neighbour yet is fine: bpf_redirect_neigh resolves it. */
	if (verdict != BPF_FIB_LKUP_RET_SUCCESS && verdict != BPF_FIB_LKUP_RET_NO_NEIGH)
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);
	/* Too big for the way out: the stack fragments it or answers "fragmentation needed". */
	if (!fits_egress_mtu(skb, fib.ifindex))
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);

	if (membrane_route_decrement_ttl(skb, &route) < 0)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	/* The lookup left the next hop (the node's IP) in ipv4_dst. */
	struct bpf_redir_neigh next_hop = {
		.nh_family = AF_INET,
		.ipv4_nh = fib.ipv4_dst,
	};
	membrane_report_forward(skb, MBR_STAT_FIB_FORWARDED);
	return bpf_redirect_neigh(fib.ifindex, &next_hop, sizeof(next_hop), 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
