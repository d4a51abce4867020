/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A packet to a service without endpoints (a pod's, or a client's that
 * came in through a device), refused as kube-proxy's REJECT refuses it: a
 * TCP SYN answered with a RST, a UDP datagram with an ICMP port
 * unreachable, both from the service address, built in place of the packet
 * and sent back out of the interface it came in by. The client fails at
 * once (ECONNREFUSED), as the socket programs make connect() fail. Include
 * from tc (sched_cls) programs only.
 */
#ifndef SERVICE_LB_REJECT_H
#define SERVICE_LB_REJECT_H

#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h"
#include "membrane/icmp.h"

#define REJECT_TCP_ACK 0x10
#define REJECT_IP_DF 0x4000

/* A TCP header without options (<linux/tcp.h>'s bitfields spelled as bytes). */
struct reject_tcphdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff;  /* data offset in the high 4 bits */
	__u8 flags; /* MBR_TCP_* */
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

/* What the TCP checksum covers: the pseudo-header and the header (32 bytes, a multiple of 4 for bpf_csum_diff). */
struct reject_tcp_sum {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 protocol;
	__be16 length;
	struct reject_tcphdr tcp;
};

/*
 * Rewrites a TCP SYN into the RST+ACK its destination's closed port would
 * send (RFC 9293 3.10.7.1: SEQ 0, ACK the SYN's sequence + 1): 0, or
 * negative when the frame cannot be answered (IP options, a helper failed:
 * drop it).
 */
static __always_inline int reject_tcp_syn(struct __sk_buff *skb, __u32 l4)
{
	struct ethhdr eth;
	struct iphdr ip;
	struct reject_tcphdr syn;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 || bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 ||
	    ip.ihl != 5 || l4 != ETH_HLEN + sizeof(ip) || bpf_skb_load_bytes(skb, l4, &syn, sizeof(syn)) < 0)
		return -1;
	struct reject_tcp_sum sum = {
		.saddr = ip.daddr,
		.daddr = ip.saddr,
		.protocol = IPPROTO_TCP,
		.length = bpf_htons(sizeof(struct reject_tcphdr)),
		.tcp =
			{
				.source = syn.dest,
				.dest = syn.source,
				.ack_seq = bpf_htonl(bpf_ntohl(syn.seq) + 1),
				.doff = (sizeof(struct reject_tcphdr) / 4) << 4,
				.flags = MBR_TCP_RST | REJECT_TCP_ACK,
			},
	};
	sum.tcp.check = membrane_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&sum, sizeof(sum), 0));
	struct iphdr rst = {
		.version = 4,
		.ihl = 5,
		.tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(struct reject_tcphdr)),
		.frag_off = bpf_htons(REJECT_IP_DF),
		.ttl = MBR_ICMP_TTL,
		.protocol = IPPROTO_TCP,
		.saddr = ip.daddr,
		.daddr = ip.saddr,
	};
	rst.check = membrane_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&rst, sizeof(rst), 0));

	const __u8 sender_mac[ETH_ALEN] = {eth.h_source[0], eth.h_source[1], eth.h_source[2],
					   eth.h_source[3], eth.h_source[4], eth.h_source[5]};
	__builtin_memcpy(eth.h_source, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth.h_dest, sender_mac, ETH_ALEN);
	/* Cut first: it also drops the offloads a control reply must not keep. */
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(rst) + sizeof(sum.tcp), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &rst, sizeof(rst), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(rst), &sum.tcp, sizeof(sum.tcp), BPF_F_INVALIDATE_HASH) < 0)
		return -1;
	return 0;
}

/*
 * Refuses the packet (`protocol`, `tcp_flags`, its L4 header at `l4`): 1
 * when it was turned into its answer (send it back out of
 * skb->ingress_ifindex), 0 when it is not answered (a TCP segment other
 * than a SYN, which kube-proxy's REJECT would answer too but no client
 * waits on: drop it), negative when the answer could not be built (drop).
 */
static __always_inline int reject(struct __sk_buff *skb, __u8 protocol, __u8 tcp_flags, __u32 l4)
{
	if (protocol == IPPROTO_UDP) {
		__be32 service;

		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, daddr), &service, sizeof(service)) < 0)
			return -1;
		return membrane_icmp_error(skb, service, MBR_ICMP_UNREACH, MBR_ICMP_PORT_UNREACH) < 0 ? -1 : 1;
	}
	if ((tcp_flags & (MBR_TCP_SYN | REJECT_TCP_ACK | MBR_TCP_RST)) != MBR_TCP_SYN)
		return 0;
	return reject_tcp_syn(skb, l4) < 0 ? -1 : 1;
}

#endif
