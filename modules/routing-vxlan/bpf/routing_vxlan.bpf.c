// SPDX-License-Identifier: Apache-2.0
/*
 * routing-vxlan's pipeline stage (MBR_STAGE_ROUTING): a packet from a local
 * pod to a prefix another node holds leaves through the VXLAN device in
 * collect-metadata mode, the tunnel key naming the node (outer destination)
 * and the source's security identity (VNI). Everything else goes on down the
 * pipeline untouched. The receiving node's core reads the identity back
 * (mbr_from_overlay) and delivers.
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

#include "routing_vxlan_config.h"

/* A VXLAN network identifier has 24 bits; an identity beyond cannot travel. */
#define VXLAN_VNI_MAX 0xffffffu
#define OUTER_TTL 64
#ifndef IP_DF
#define IP_DF 0x4000 /* don't fragment (frag_off) */
#endif

/*
 * Written by the module after load and before the stage is filled, so the
 * program never runs without it. Not pinned: each generation has its own,
 * so a reload that changes the device switches atomically with the slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct routing_vxlan_config);
} routing_vxlan_cfg SEC(".maps");

SEC("tc")
int routing_vxlan_stage(struct __sk_buff *skb)
{
	struct membrane_remote_route route;
	const __u32 zero = 0;

	if (!membrane_remote_route(skb, &route))
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);
	/* The node routes the packet, so it counts as a hop, as in direct mode. */
	if (membrane_route_ttl_expires(&route))
		return membrane_route_ttl_exceeded(skb, &route);

	const struct routing_vxlan_config *config = bpf_map_lookup_elem(&routing_vxlan_cfg, &zero);
	const __u32 identity = membrane_ctx_src_identity(skb);
	if (!config || config->ifindex == 0 || identity > VXLAN_VNI_MAX)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);

	/*
	 * Over the overlay's MTU (the pod's MTU was raised, or a chained pod
	 * never had it lowered): the outer packet would be fragmented. With DF
	 * set (TCP, and any GSO packet, judged by its segments) the stack
	 * answers ICMP frag-needed and forwards nothing, so path MTU discovery
	 * works through the overlay. Without DF it is dropped: the stack would
	 * fragment it into the node route, whose VNI says "remote node", and
	 * the receiving node refuses a node identity with a pod's address.
	 */
	__u32 mtu_len = 0;
	if (bpf_check_mtu(skb, config->ifindex, &mtu_len, 0, BPF_MTU_CHK_SEGS) != BPF_MTU_CHK_RET_SUCCESS) {
		__be16 frag_off = 0;
		if (bpf_skb_load_bytes(skb, route.l3_offset + offsetof(struct iphdr, frag_off), &frag_off,
				       sizeof(frag_off)) < 0 ||
		    !(frag_off & bpf_htons(IP_DF)))
			return membrane_report_drop(skb, MBR_STAT_DROP_OVERSIZE, 0);
		membrane_count(skb, MBR_STAT_OVERSIZE_TO_STACK);
		return TC_ACT_OK;
	}

	struct bpf_tunnel_key key = {
		.remote_ipv4 = bpf_ntohl(route.tunnel_endpoint), /* the helper wants host order */
		.tunnel_id = identity,
		.tunnel_ttl = OUTER_TTL,
	};
	/* No outer UDP checksum: the inner packet carries its own (as Cilium does). */
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0 ||
	    membrane_route_decrement_ttl(skb, &route) < 0)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	membrane_report_forward(skb, MBR_STAT_TO_OVERLAY);
	return bpf_redirect(config->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
