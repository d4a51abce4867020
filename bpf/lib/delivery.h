/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Local delivery: a packet for a pod on this node goes straight into the
 * pod's network namespace (bpf_redirect_peer from tc ingress to the peer of
 * its host veth), not through the host's stack. The node acts as the pod's
 * router: MACs rewritten as the gateway would, TTL decremented.
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
#include "membrane/stats.h"

#include "eth.h"

enum delivery_result {
	DELIVERY_NOT_LOCAL = 0, /* no local endpoint has the destination */
	DELIVERY_TO_STACK = 1,  /* local, but the stack must handle it (TTL expiring) */
	DELIVERY_REDIRECTED = 2,
	DELIVERY_INVALID = 3, /* malformed: drop */
};

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
	if (ip->ttl <= 1)
		return DELIVERY_TO_STACK; /* the stack sends the ICMP time exceeded */

	struct ethhdr *eth = skb_data(skb);
	if ((void *)(eth + 1) > skb_data_end(skb))
		return DELIVERY_INVALID;
	mac_copy(eth->h_source, endpoint->host_mac);
	mac_copy(eth->h_dest, endpoint->mac);

	/* TTL shares a 16-bit checksum word with the protocol. */
	const __be16 old_word = *(const __be16 *)&ip->ttl;
	ip->ttl -= 1;
	const __be16 new_word = *(const __be16 *)&ip->ttl;
	const __u32 ifindex = endpoint->ifindex; /* read before the helper below */
	if (bpf_l3_csum_replace(skb, sizeof(struct ethhdr) + __builtin_offsetof(struct iphdr, check), old_word, new_word,
				sizeof(new_word)) != 0)
		return DELIVERY_INVALID;

	/* A packet decapsulated from the overlay may carry another host's MAC. */
	bpf_skb_change_type(skb, PACKET_HOST);
	membrane_stat_inc(MBR_STAT_DELIVERED_LOCAL);
	*verdict = bpf_redirect_peer(ifindex, 0);
	return DELIVERY_REDIRECTED;
}

#endif /* MBR_LIB_DELIVERY_H */
