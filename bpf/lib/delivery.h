/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local delivery: a packet for a pod on this node goes straight into the
 * pod's network namespace (bpf_redirect_peer from tc ingress to the peer of
 * its host veth), not through the host's stack. The node acts as the pod's
 * router: MACs rewritten as the gateway would, TTL decremented, and a packet
 * whose TTL runs out answered with ICMP time exceeded.
 */
#ifndef MBR_LIB_DELIVERY_H
#define MBR_LIB_DELIVERY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/endpoints.h"
#include "membrane/icmp.h"
#include "membrane/pipeline.h"
#include "membrane/routing.h" /* membrane_ipv4_decrement_ttl */
#include "membrane/stats.h"

#include "eth.h"

enum delivery_result {
	DELIVERY_NOT_LOCAL = 0, /* no local endpoint has the destination */
	DELIVERY_TO_STACK = 1,  /* local, but the stack must handle it (TTL expiring) */
	DELIVERY_REDIRECTED = 2, /* delivered, or answered (TTL expired): return the verdict */
	DELIVERY_INVALID = 3, /* malformed: drop */
};

#define OVERLAY_REPLY_TTL 64

/*
 * The verdict for a packet from the overlay whose TTL runs out here. The
 * stack cannot answer it: it has no route to pods on other nodes (the
 * overlay needs none). So it is turned into ICMP time exceeded from this
 * node's tunnel address and sent back through the tunnel it came by, as
 * another node's stack (MBR_IDENTITY_REMOTE_NODE) in the VNI.
 */
static __always_inline int ttl_exceeded_into_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key tunnel = {};

	if (bpf_skb_get_tunnel_key(skb, &tunnel, sizeof(tunnel), 0) < 0 ||
	    membrane_icmp_time_exceeded(skb, bpf_htonl(tunnel.local_ipv4)) < 0)
		goto invalid;
	struct bpf_tunnel_key back = {
		.remote_ipv4 = tunnel.remote_ipv4, /* both in host order, as the helpers use them */
		.tunnel_id = MBR_IDENTITY_REMOTE_NODE,
		.tunnel_ttl = OVERLAY_REPLY_TTL,
	};
	if (bpf_skb_set_tunnel_key(skb, &back, sizeof(back), BPF_F_ZERO_CSUM_TX) < 0)
		goto invalid;
	membrane_count(skb, MBR_STAT_TTL_EXCEEDED);
	return bpf_redirect(skb->ingress_ifindex, 0);
invalid:
	return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
}

/*
 * Redirects the IPv4 packet to the local endpoint that owns its destination.
 * On DELIVERY_REDIRECTED, *verdict holds the action to return.
 */
static __always_inline enum delivery_result deliver_to_local_endpoint(struct __sk_buff *skb, int *verdict)
{
	struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return DELIVERY_INVALID;
	const struct mbr_endpoint_value *endpoint = membrane_endpoint_lookup(ip->daddr);
	if (!endpoint)
		return DELIVERY_NOT_LOCAL;
	if (ip->ttl <= 1) {
		if (membrane_ctx_direction(skb) == MBR_DIR_FROM_OVERLAY) {
			*verdict = ttl_exceeded_into_overlay(skb);
			return DELIVERY_REDIRECTED;
		}
		/* From a pod or a device, the stack has a route back and sends the ICMP itself. */
		membrane_count(skb, MBR_STAT_TTL_EXCEEDED);
		return DELIVERY_TO_STACK;
	}

	struct ethhdr *eth = skb_data(skb);
	if ((void *)(eth + 1) > skb_data_end(skb))
		return DELIVERY_INVALID;
	mac_copy(eth->h_source, endpoint->host_mac);
	mac_copy(eth->h_dest, endpoint->mac);

	membrane_ipv4_decrement_ttl(ip);
	const __u32 ifindex = endpoint->ifindex;

	/* A packet decapsulated from the overlay may carry another host's MAC. */
	bpf_skb_change_type(skb, PACKET_HOST);
	membrane_report_forward(skb, MBR_STAT_DELIVERED_LOCAL);
	*verdict = bpf_redirect_peer(ifindex, 0);
	return DELIVERY_REDIRECTED;
}

#endif /* MBR_LIB_DELIVERY_H */
