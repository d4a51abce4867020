/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ethernet and IPv4 header access with the bounds checks the verifier wants.
 * Packet pointers are re-read from the skb after anything that may move the
 * data (bpf_skb_pull_data), so callers keep only what these return.
 */
#ifndef MBR_LIB_ETH_H
#define MBR_LIB_ETH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

static __always_inline void *skb_data(const struct __sk_buff *skb)
{
	return (void *)(long)skb->data;
}

static __always_inline void *skb_data_end(const struct __sk_buff *skb)
{
	return (void *)(long)skb->data_end;
}

/* The Ethernet header, or NULL if the frame is shorter than one. */
static __always_inline struct ethhdr *eth_header(const struct __sk_buff *skb)
{
	struct ethhdr *eth = skb_data(skb);
	if ((void *)(eth + 1) > skb_data_end(skb))
		return NULL;
	return eth;
}

static __always_inline __u16 eth_protocol(const struct __sk_buff *skb)
{
	const struct ethhdr *eth = eth_header(skb);
	return eth ? bpf_ntohs(eth->h_proto) : 0;
}

/*
 * Makes the first `length` bytes directly readable: they usually are, but a
 * packet may carry its headers in paged data (e.g. after GRO).
 */
static __always_inline int ensure_linear(struct __sk_buff *skb, __u32 length)
{
	if (skb_data(skb) + length <= skb_data_end(skb))
		return 0;
	return bpf_skb_pull_data(skb, length);
}

/*
 * The IPv4 header of an ETH_P_IP frame, or NULL if it is truncated or not a
 * valid IPv4 header. Invalidates earlier packet pointers.
 */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	if (ensure_linear(skb, sizeof(struct ethhdr) + sizeof(struct iphdr)) != 0)
		return NULL;
	struct iphdr *ip = skb_data(skb) + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > skb_data_end(skb))
		return NULL;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	return ip;
}

static __always_inline void mac_copy(__u8 *to, const __u8 *from)
{
	__builtin_memcpy(to, from, ETH_ALEN);
}

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0;
}

static __always_inline int mac_is_zero(const __u8 *mac)
{
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

#endif /* MBR_LIB_ETH_H */
