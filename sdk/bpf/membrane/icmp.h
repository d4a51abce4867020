/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ICMP errors a node answers in BPF: a packet whose TTL runs out on a node
 * is turned, in place, into the "time exceeded" its sender waits for (what
 * traceroute and tracepath show as a hop). The stack cannot always do it:
 * on the overlay it has no route back to the sender. Include from tc
 * (sched_cls) programs only.
 */
#ifndef MEMBRANE_ICMP_H
#define MEMBRANE_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* From <linux/icmp.h>, which drags in libc headers a BPF target lacks. */
#define MBR_ICMP_TIME_EXCEEDED 11
#define MBR_ICMP_EXC_TTL 0 /* TTL count exceeded (in transit) */
#define MBR_ICMP_UNREACH 3
#define MBR_ICMP_PORT_UNREACH 3 /* code of MBR_ICMP_UNREACH */

struct membrane_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused; /* zero for time exceeded and port unreachable */
};

#define MBR_ICMP_QUOTED_PAYLOAD 8 /* bytes past the offending IP header an ICMP error quotes (RFC 792) */
#define MBR_ICMP_TTL 64
#define MBR_ICMP_TOS 0xc0 /* IPTOS_PREC_INTERNETCONTROL, as the kernel's own ICMP errors */

/* What an ICMP error carries after its own IP header; 36 bytes, a multiple of 4 for bpf_csum_diff. */
struct membrane_icmp_message {
	struct membrane_icmphdr icmp;
	struct iphdr quoted_ip;
	__u8 quoted_payload[MBR_ICMP_QUOTED_PAYLOAD];
};

static __always_inline __sum16 membrane_csum_fold(__s64 sum)
{
	__u32 folded = (__u32)sum;

	folded = (folded & 0xffff) + (folded >> 16);
	folded = (folded & 0xffff) + (folded >> 16);
	return (__sum16)~folded;
}

/*
 * Rewrites the IPv4-over-Ethernet frame in skb into the ICMP error `type`,
 * `code` from `from` to the frame's sender: MACs swapped, the offending
 * header and 8 bytes quoted, checksums computed, the frame cut to its 70
 * bytes. 0 on success; negative (the frame untouched or beyond use: drop
 * it) for a header with options, a packet shorter than the quote, or a
 * helper that failed. The caller sends the frame back the way it came.
 * (SDK 1.8: the general form of membrane_icmp_time_exceeded below.)
 */
static __always_inline int membrane_icmp_error(struct __sk_buff *skb, __be32 from, __u8 type, __u8 code)
{
	struct ethhdr eth;
	struct membrane_icmp_message message = {};

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN, &message.quoted_ip, sizeof(message.quoted_ip) + MBR_ICMP_QUOTED_PAYLOAD) < 0)
		return -1;
	if (message.quoted_ip.ihl != 5)
		return -1; /* options would have to be quoted whole */

	message.icmp.type = type;
	message.icmp.code = code;
	message.icmp.checksum = membrane_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&message, sizeof(message), 0));

	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.tos = MBR_ICMP_TOS,
		.tot_len = bpf_htons(sizeof(struct iphdr) + sizeof(message)),
		.ttl = MBR_ICMP_TTL,
		.protocol = IPPROTO_ICMP,
		.saddr = from,
		.daddr = message.quoted_ip.saddr,
	};
	ip.check = membrane_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)&ip, sizeof(ip), 0));

	const __u8 sender_mac[ETH_ALEN] = {eth.h_source[0], eth.h_source[1], eth.h_source[2],
					   eth.h_source[3], eth.h_source[4], eth.h_source[5]};
	__builtin_memcpy(eth.h_source, eth.h_dest, ETH_ALEN);
	__builtin_memcpy(eth.h_dest, sender_mac, ETH_ALEN);
	eth.h_proto = bpf_htons(ETH_P_IP);

	/* Cut (or pad) first: it also drops the offloads a control reply must not keep. */
	if (bpf_skb_change_tail(skb, ETH_HLEN + sizeof(ip) + sizeof(message), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip, sizeof(ip), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(ip), &message, sizeof(message), BPF_F_INVALIDATE_HASH) < 0)
		return -1;
	return 0;
}

/* An ICMP time exceeded (TTL expired in transit) from `from`, as membrane_icmp_error() builds it. */
static __always_inline int membrane_icmp_time_exceeded(struct __sk_buff *skb, __be32 from)
{
	return membrane_icmp_error(skb, from, MBR_ICMP_TIME_EXCEEDED, MBR_ICMP_EXC_TTL);
}

#endif /* MEMBRANE_ICMP_H */
