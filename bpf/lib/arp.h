/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod's ARP requests, answered in place: a pod has a /32 and a default
 * route via a gateway on a link route, so it ARPs for the gateway (or, with
 * other routes, for anything). The answer is always the host side of its
 * veth, so the pod needs no bridge and the host veth no address.
 */
#ifndef MBR_LIB_ARP_H
#define MBR_LIB_ARP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/endpoints.h"
#include "membrane/stats.h"

#include "eth.h"
#include "source_check.h"

/* From <linux/if_arp.h>, which drags in libc headers a BPF target lacks. */
#define MBR_ARPHRD_ETHER 1
#define MBR_ARPOP_REQUEST 1
#define MBR_ARPOP_REPLY 2

/* An Ethernet/IPv4 ARP packet after its Ethernet header. */
struct arp_ipv4 {
	struct {
		__be16 ar_hrd;
		__be16 ar_pro;
		__u8 ar_hln;
		__u8 ar_pln;
		__be16 ar_op;
	} header;
	__u8 sender_mac[ETH_ALEN];
	__be32 sender_ip;
	__u8 target_mac[ETH_ALEN];
	__be32 target_ip;
} __attribute__((packed));

enum arp_result {
	ARP_TO_STACK = 0, /* a trusted reply, probe or announcement: the stack takes it */
	ARP_ANSWERED = 1, /* turned into the reply: *verdict holds the action */
	ARP_SPOOFED = 2,  /* sender address or MAC not the pod's own: drop */
	ARP_INVALID = 3,  /* truncated, or not Ethernet/IPv4 ARP: drop */
};

/*
 * The pod's ARP packet: its sender must be the pod itself (source_check.h),
 * else one pod could answer for, or announce, another's address. A request
 * is turned into the reply ("target_ip is at the host veth's MAC") and sent
 * back out of the device it came in on, towards the pod. A probe (sender
 * 0.0.0.0) claims no address and passes, as does a trusted reply or
 * gratuitous announcement.
 */
static __always_inline enum arp_result arp_from_endpoint(struct __sk_buff *skb, int *verdict)
{
	if (ensure_linear(skb, sizeof(struct ethhdr) + sizeof(struct arp_ipv4)) != 0)
		return ARP_INVALID;
	struct ethhdr *eth = skb_data(skb);
	struct arp_ipv4 *arp = (void *)(eth + 1);
	if ((void *)(arp + 1) > skb_data_end(skb))
		return ARP_INVALID;

	if (arp->header.ar_hrd != bpf_htons(MBR_ARPHRD_ETHER) || arp->header.ar_pro != bpf_htons(ETH_P_IP) ||
	    arp->header.ar_hln != ETH_ALEN || arp->header.ar_pln != 4)
		return ARP_INVALID;
	const __be32 sender_ip = arp->sender_ip;
	const __be32 target_ip = arp->target_ip;
	if (sender_ip == 0)
		return ARP_TO_STACK; /* duplicate address probe */

	const struct mbr_endpoint_value *endpoint = endpoint_owning_source(skb, sender_ip, eth->h_source);
	if (!endpoint || !mac_equal(arp->sender_mac, eth->h_source))
		return ARP_SPOOFED;
	if (arp->header.ar_op != bpf_htons(MBR_ARPOP_REQUEST) || sender_ip == target_ip)
		return ARP_TO_STACK; /* a reply, or an announcement */
	/* The host veth's MAC is kept in the sender's endpoint entry. */
	if (mac_is_zero(endpoint->host_mac))
		return ARP_TO_STACK;

	__u8 requester_mac[ETH_ALEN];
	mac_copy(requester_mac, arp->sender_mac);

	arp->header.ar_op = bpf_htons(MBR_ARPOP_REPLY);
	mac_copy(arp->target_mac, requester_mac);
	arp->target_ip = sender_ip;
	mac_copy(arp->sender_mac, endpoint->host_mac);
	arp->sender_ip = target_ip;
	mac_copy(eth->h_dest, requester_mac);
	mac_copy(eth->h_source, endpoint->host_mac);

	membrane_count(skb, MBR_STAT_ARP_REPLIED);
	/* Egress of the host veth is the pod's ingress. */
	*verdict = bpf_redirect(skb->ifindex, 0);
	return ARP_ANSWERED;
}

#endif /* MBR_LIB_ARP_H */
