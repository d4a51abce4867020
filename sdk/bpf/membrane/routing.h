/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a routing stage asks of a packet before it routes it: is it IPv4 from
 * a local endpoint, headed for a prefix another node holds (ipcache entry
 * with a tunnel endpoint)? Shared by the routing modules (routing-vxlan,
 * direct-routing) and any third-party routing module. Include from tc
 * (sched_cls) programs only.
 */
#ifndef MEMBRANE_ROUTING_H
#define MEMBRANE_ROUTING_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/ipcache.h"
#include "membrane/pipeline.h"

/* An IPv4 packet for another node's prefix, as membrane_remote_route() found it. */
struct membrane_remote_route {
	__u32 l3_offset;        /* bytes from the start of the frame to the IPv4 header */
	__be32 saddr;
	__be32 daddr;
	__be32 tunnel_endpoint; /* the node that holds daddr (network byte order) */
	__u32 dst_identity;
	__u8 ttl;
	__u8 tos;
	__u8 protocol;
	__u16 tot_len;          /* host byte order; a GSO super-packet's (up to 64 KB): no MTU test */
};

/*
 * 1 and `route` filled when the packet came from a local endpoint (the
 * entry program said so in the context), is IPv4 over Ethernet and its
 * destination lies in a prefix another node holds; 0 otherwise, and the
 * stage should hand the packet on unchanged. Only endpoint traffic is
 * routed: a packet that arrived from the overlay or a device and is not for
 * a local pod belongs to the stack, and re-sending it would make loops.
 */
static __always_inline int membrane_remote_route(struct __sk_buff *skb, struct membrane_remote_route *route)
{
	struct iphdr ip;

	if (!membrane_ctx_valid(skb) || membrane_ctx_direction(skb) != MBR_DIR_FROM_ENDPOINT)
		return 0;
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5)
		return 0;

	const struct mbr_ipcache_value *entry = membrane_ipcache_lookup(ip.daddr);
	if (!entry || entry->tunnel_endpoint == 0)
		return 0;

	route->l3_offset = ETH_HLEN;
	route->saddr = ip.saddr;
	route->daddr = ip.daddr;
	route->tunnel_endpoint = entry->tunnel_endpoint;
	route->dst_identity = entry->identity;
	route->ttl = ip.ttl;
	route->tos = ip.tos;
	route->protocol = ip.protocol;
	route->tot_len = bpf_ntohs(ip.tot_len);
	return 1;
}

#endif /* MEMBRANE_ROUTING_H */
