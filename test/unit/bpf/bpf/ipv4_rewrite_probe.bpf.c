// SPDX-License-Identifier: Apache-2.0
/* The SDK's IPv4 header rewrites (membrane/routing.h), each alone in a
 * program, for ipv4_rewrite_test.cpp to run on hand-made frames with
 * BPF_PROG_TEST_RUN: an Ethernet frame with an IPv4 header at ETH_HLEN. */
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/overlay.h"
#include "membrane/routing.h"

/* membrane_ipv4_decrement_ttl() on the header in the linear packet data. */
SEC("tc")
int decrement_ttl_in_place(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	membrane_ipv4_decrement_ttl(ip);
	return TC_ACT_OK;
}

/* membrane_route_decrement_ttl(): the same through the checksum and store helpers. */
SEC("tc")
int decrement_ttl_with_helpers(struct __sk_buff *skb)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TC_ACT_SHOT;
	const struct membrane_remote_route route = {.l3_offset = ETH_HLEN, .ttl = ip.ttl};
	return membrane_route_decrement_ttl(skb, &route) < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* membrane_ipv4_store_byte() on the TOS byte (the low half of its word): marks Congestion Experienced. */
SEC("tc")
int mark_congestion_experienced(struct __sk_buff *skb)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TC_ACT_SHOT;
	const int stored =
		membrane_ipv4_store_byte(skb, ETH_HLEN, offsetof(struct iphdr, tos), ip.tos, ip.tos | MBR_ECN_CE);
	return stored < 0 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
