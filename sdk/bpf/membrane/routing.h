/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a routing stage asks of a packet before it routes it: is it IPv4 from
 * a local endpoint, headed for a prefix another node holds (ipcache entry
 * with a tunnel endpoint)? Shared by the routing modules (routing-vxlan,
 * direct-routing) and any third-party routing module, with what every
 * router does to a packet it passes on: TTL down by one, and a packet whose
 * TTL runs out answered with ICMP time exceeded. Include from tc (sched_cls)
 * programs only.
 */
#ifndef MEMBRANE_ROUTING_H
#define MEMBRANE_ROUTING_H

#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/icmp.h"
#include "membrane/ipcache.h"
#include "membrane/pipeline.h"
#include "membrane/stats.h"

#ifndef AF_INET
#define AF_INET 2
#endif

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
 * entry program said so in the context) or was translated by the service
 * stage (MBR_CTX_F_SERVICE_NAT, SDK 1.8: a connection from outside to a
 * backend on another node), is IPv4 over Ethernet and its destination lies
 * in a prefix another node holds; 0 otherwise, and the stage should hand
 * the packet on unchanged. Only that traffic is routed: any other packet
 * that arrived from the overlay or a device and is not for a local pod
 * belongs to the stack, and re-sending it would make loops.
 */
static __always_inline int membrane_remote_route(struct __sk_buff *skb, struct membrane_remote_route *route)
{
	struct iphdr ip;

	if (!membrane_ctx_valid(skb) ||
	    (membrane_ctx_direction(skb) != MBR_DIR_FROM_ENDPOINT && !(skb->cb[2] & MBR_CTX_F_SERVICE_NAT)))
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

/*
 * SDK 1.11. Rewrites the byte at `field` (an offset into the IPv4 header at
 * `l3_offset`) from `before` to `after`, the header checksum fixed up
 * incrementally. The checksum sums 16-bit words, and a change to one byte
 * changes its word by the same amount whatever the other byte holds (as the
 * kernel's ip_decrease_ttl and IP_ECN_set_ce add a delta): the high half of
 * the word at an even offset, the low half at an odd one. 0, or negative
 * when a helper failed (drop the packet).
 */
static __always_inline int membrane_ipv4_store_byte(struct __sk_buff *skb, __u32 l3_offset, __u32 field, __u8 before,
						    __u8 after)
{
	const __u32 shift = field & 1 ? 0 : 8;
	const __be16 from = bpf_htons((__u16)before << shift);
	const __be16 to = bpf_htons((__u16)after << shift);
	if (bpf_l3_csum_replace(skb, l3_offset + offsetof(struct iphdr, check), from, to, sizeof(__u16)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, l3_offset + field, &after, sizeof(after), 0);
}

/*
 * A router's one change to a packet it passes on: TTL down by one, the
 * checksum fixed up incrementally. 0, or negative when a helper failed (drop
 * the packet).
 */
static __always_inline int membrane_route_decrement_ttl(struct __sk_buff *skb, const struct membrane_remote_route *route)
{
	return membrane_ipv4_store_byte(skb, route->l3_offset, offsetof(struct iphdr, ttl), route->ttl, route->ttl - 1);
}

/*
 * SDK 1.12. The same decrement on an IPv4 header in memory the program may
 * write (the linear packet data after a bounds check, or a copy it stores
 * back): no helper call. As the kernel's ip_decrease_ttl(): TTL is the high
 * byte of its 16-bit word, so the word drops by 0x0100 and the checksum,
 * its one's complement, rises by as much, with the end-around carry. Only
 * after membrane_route_ttl_expires() said no (a TTL of 0 would wrap).
 */
static __always_inline void membrane_ipv4_decrement_ttl(struct iphdr *ip)
{
	const __u32 check = (__u32)ip->check + (__u32)bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xffff));
	ip->ttl -= 1;
}

/* 1 when the packet's TTL runs out here: a router does not pass on a packet it would set to 0. */
static __always_inline int membrane_route_ttl_expires(const struct membrane_remote_route *route)
{
	return route->ttl <= 1;
}

/*
 * The verdict for a pod's packet whose TTL ran out on this node: turned into
 * ICMP time exceeded and sent back out of the pod's host veth, from the
 * address the node's stack would answer from (the FIB's source toward the
 * pod), counted MBR_STAT_TTL_EXCEEDED. Answered here rather than by the
 * stack, which has no route to the destination in overlay mode and so would
 * answer "network unreachable" or nothing. A packet that cannot be answered
 * (IP options, too short) is dropped and counted MBR_STAT_DROP_INVALID.
 */
static __always_inline int membrane_route_ttl_exceeded(struct __sk_buff *skb, const struct membrane_remote_route *route)
{
	struct bpf_fib_lookup toward_sender = {
		.family = AF_INET,
		.ifindex = skb->ingress_ifindex,
		.ipv4_dst = route->saddr,
	};
	const long found = bpf_fib_lookup(skb, &toward_sender, sizeof(toward_sender), BPF_FIB_LOOKUP_SRC);

	if ((found != BPF_FIB_LKUP_RET_SUCCESS && found != BPF_FIB_LKUP_RET_NO_NEIGH) || toward_sender.ipv4_src == 0 ||
	    membrane_icmp_time_exceeded(skb, toward_sender.ipv4_src) < 0)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	membrane_count(skb, MBR_STAT_TTL_EXCEEDED);
	return bpf_redirect(skb->ingress_ifindex, 0);
}

#endif /* MEMBRANE_ROUTING_H */
