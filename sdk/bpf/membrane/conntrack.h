/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking, the kernel's and shared by every stage (SDK 1.4).
 *
 * One pinned LRU hash (mbr_ct_v1) holds one entry per connection, keyed by
 * the tuple of its first packet. The entry programs look every IPv4 packet
 * up and put what they found into the context (membrane_ctx_ct_state):
 *   MBR_CT_NEW          no live entry: the first packet of a connection
 *   MBR_CT_ESTABLISHED  an entry in the packet's direction
 *   MBR_CT_REPLY        an entry in the other direction: an answer
 *   MBR_CT_RELATED      an ICMP error about a tracked connection
 * A stage that lets a new connection through creates its entry with
 * membrane_ct_track() (SDK 1.6; membrane_ct_create() before, which tracks
 * even in a trace run); nothing else does, so without such a stage nothing
 * is tracked. Entries expire (timeouts below, refreshed by each packet); a
 * lookup treats an expired entry as absent, and the agent deletes expired
 * entries, never live ones (also not at its start). Layout: contract.h.
 *
 * Not tracked (state MBR_CT_UNTRACKED): IP fragments past the first, which
 * carry no ports, and packets too short to hold their ports.
 */
#ifndef MEMBRANE_CONNTRACK_H
#define MEMBRANE_CONNTRACK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/trace.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MBR_CT_MAX);
	__type(key, struct mbr_ct_key);
	__type(value, struct mbr_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ct_v1 SEC(".maps");

#define MBR_NSEC_PER_SEC 1000000000ull

/*
 * The clock of entries' lifetimes: CLOCK_MONOTONIC_COARSE (the monotonic
 * clock as of the last tick, as Cilium's conntrack keeps time), read for
 * every packet by both entry programs; bpf_ktime_get_ns() cost about 40 ns
 * a call on a paravirtualized clock. Timeouts are seconds, a tick is at
 * most 10 ms. The agent's sweep reads the same clock.
 */
static __always_inline __u64 membrane_ct_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* What a packet is, for tracking and for policy: its tuple and a little more. */
struct membrane_flow {
	struct mbr_ct_key key; /* the packet's own tuple (saddr, daddr, ports as sent) */
	__u8 tcp_flags;        /* TCP: byte 13 of the header (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10) */
	__u8 icmp_error;       /* ICMP destination unreachable, time exceeded or parameter problem */
	__u8 tracked;          /* 0: a non-first fragment or a truncated header, no ports */
	__u8 pad;
	struct mbr_ct_key quoted; /* icmp_error: the tuple of the packet the error is about */
};

#define MBR_TCP_FIN 0x01
#define MBR_TCP_SYN 0x02
#define MBR_TCP_RST 0x04

/* From <linux/icmp.h>, which drags in libc headers a BPF target lacks. */
#define MBR_ICMP_ECHOREPLY 0
#define MBR_ICMP_DEST_UNREACH 3
#define MBR_ICMP_ECHO 8
#define MBR_ICMP_TIME_EXCEEDED_TYPE 11
#define MBR_ICMP_PARAMETERPROB 12

#define MBR_IP_MF 0x2000
#define MBR_IP_OFFSET 0x1fff

/*
 * The ports of a tuple, from the L4 header at `offset`: TCP, UDP and SCTP
 * ports, or an ICMP echo's identifier in both (a request and its reply then
 * reverse into each other). Other protocols have none. 0, or -1 if the
 * header is cut short. `icmp_type`: the ICMP type read, else 0xff.
 */
static __always_inline int membrane_load_ports(struct __sk_buff *skb, __u32 offset, __u8 protocol, struct mbr_ct_key *key,
					       __u8 *icmp_type)
{
	*icmp_type = 0xff;
	if (protocol == IPPROTO_ICMP) {
		__u8 icmp[8];
		if (bpf_skb_load_bytes(skb, offset, icmp, sizeof(icmp)) != 0)
			return -1;
		*icmp_type = icmp[0];
		if (icmp[0] == MBR_ICMP_ECHO || icmp[0] == MBR_ICMP_ECHOREPLY) {
			__builtin_memcpy(&key->sport, &icmp[4], sizeof(key->sport));
			key->dport = key->sport;
		}
		return 0;
	}
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP && protocol != IPPROTO_SCTP)
		return 0;
	__be16 ports[2];
	if (bpf_skb_load_bytes(skb, offset, ports, sizeof(ports)) != 0)
		return -1;
	key->sport = ports[0];
	key->dport = ports[1];
	return 0;
}

/*
 * membrane_flow_of() for the packets nearly all flows are made of, read in
 * place with no helper call: TCP or UDP in an IPv4 header without options,
 * not a later fragment, its ports (and TCP flags) in the linear data. 1 when
 * `flow` (zeroed by the caller) is filled, 0 for the general path.
 */
static __always_inline int membrane_flow_in_place(const struct __sk_buff *skb, struct membrane_flow *flow)
{
	const void *data = (const void *)(long)skb->data;
	const void *data_end = (const void *)(long)skb->data_end;
	const struct iphdr *ip = data + ETH_HLEN;
	if ((const void *)(ip + 1) > data_end || ip->ihl != 5 || (ip->frag_off & bpf_htons(MBR_IP_OFFSET)))
		return 0;
	const __u8 *l4 = (const __u8 *)(ip + 1);
	/* TCP: the ports and, at byte 13, the flags; UDP: the ports. */
	if (ip->protocol == IPPROTO_TCP) {
		if ((const void *)(l4 + 14) > data_end)
			return 0;
		flow->tcp_flags = l4[13];
	} else if (ip->protocol != IPPROTO_UDP || (const void *)(l4 + 4) > data_end) {
		return 0;
	}
	flow->key.saddr = ip->saddr;
	flow->key.daddr = ip->daddr;
	flow->key.protocol = ip->protocol;
	__builtin_memcpy(&flow->key.sport, l4, sizeof(flow->key.sport));
	__builtin_memcpy(&flow->key.dport, l4 + 2, sizeof(flow->key.dport));
	flow->tracked = 1;
	return 1;
}

/*
 * The flow of the IPv4 packet in an Ethernet frame (the caller checked
 * ETH_P_IP). Reads in place or with bpf_skb_load_bytes, so no packet
 * pointer of the caller is invalidated. Returns 0, or -1 if the IP header
 * is unreadable.
 */
static __always_inline int membrane_flow_of(struct __sk_buff *skb, struct membrane_flow *flow)
{
	struct iphdr ip;
	__builtin_memset(flow, 0, sizeof(*flow));
	if (membrane_flow_in_place(skb, flow))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) != 0 || ip.ihl < 5)
		return -1;
	flow->key.saddr = ip.saddr;
	flow->key.daddr = ip.daddr;
	flow->key.protocol = ip.protocol;
	if (bpf_ntohs(ip.frag_off) & MBR_IP_OFFSET)
		return 0; /* a later fragment: untracked */
	const __u32 l4 = ETH_HLEN + ip.ihl * 4;
	__u8 icmp_type;
	if (membrane_load_ports(skb, l4, ip.protocol, &flow->key, &icmp_type) != 0)
		return 0;
	if (icmp_type == MBR_ICMP_DEST_UNREACH || icmp_type == MBR_ICMP_TIME_EXCEEDED_TYPE ||
	    icmp_type == MBR_ICMP_PARAMETERPROB) {
		/* An error quotes the IP header and 8 bytes of the packet it is about (RFC 792). */
		struct iphdr quoted;
		const __u32 quoted_at = l4 + 8;
		flow->icmp_error = 1;
		if (bpf_skb_load_bytes(skb, quoted_at, &quoted, sizeof(quoted)) != 0 || quoted.ihl < 5)
			return 0;
		flow->quoted.saddr = quoted.saddr;
		flow->quoted.daddr = quoted.daddr;
		flow->quoted.protocol = quoted.protocol;
		if (membrane_load_ports(skb, quoted_at + quoted.ihl * 4, quoted.protocol, &flow->quoted, &icmp_type) != 0)
			return 0;
	}
	if (ip.protocol == IPPROTO_TCP) {
		__u8 flags;
		if (bpf_skb_load_bytes(skb, l4 + 13, &flags, sizeof(flags)) != 0)
			return 0;
		flow->tcp_flags = flags;
	}
	flow->tracked = 1;
	return 0;
}

static __always_inline void membrane_ct_reverse(const struct mbr_ct_key *key, struct mbr_ct_key *reversed)
{
	*reversed = *key;
	reversed->saddr = key->daddr;
	reversed->daddr = key->saddr;
	reversed->sport = key->dport;
	reversed->dport = key->sport;
}

/* How long an entry lives past its last packet (documented in docs/conntrack.md). */
static __always_inline __u64 membrane_ct_timeout(__u8 protocol, __u32 flags)
{
	if (protocol != IPPROTO_TCP)
		return MBR_CT_TIMEOUT_OTHER_S * MBR_NSEC_PER_SEC;
	if (flags & MBR_CT_F_CLOSING)
		return MBR_CT_TIMEOUT_TCP_CLOSING_S * MBR_NSEC_PER_SEC;
	if (flags & MBR_CT_F_SEEN_REPLY)
		return MBR_CT_TIMEOUT_TCP_ESTABLISHED_S * MBR_NSEC_PER_SEC;
	return MBR_CT_TIMEOUT_TCP_SYN_S * MBR_NSEC_PER_SEC;
}

/* The live entry of `key`, or NULL (absent or expired). */
static __always_inline struct mbr_ct_value *membrane_ct_find(const struct mbr_ct_key *key, __u64 now)
{
	struct mbr_ct_value *entry = bpf_map_lookup_elem(&mbr_ct_v1, key);
	if (!entry || entry->expires_ns < now)
		return NULL;
	return entry;
}

/* A packet of the entry's connection: its flags and lifetime move on (written only when they change enough). */
static __always_inline void membrane_ct_refresh(struct mbr_ct_value *entry, const struct membrane_flow *flow, int reply,
						__u64 now)
{
	__u32 flags = entry->flags;
	if (reply)
		flags |= MBR_CT_F_SEEN_REPLY;
	if (flow->tcp_flags & (MBR_TCP_FIN | MBR_TCP_RST))
		flags |= MBR_CT_F_CLOSING;
	const __u64 expires = now + membrane_ct_timeout(flow->key.protocol, flags);
	if (flags != entry->flags || expires > entry->expires_ns + MBR_NSEC_PER_SEC) {
		entry->flags = flags;
		entry->expires_ns = expires;
	}
}

/*
 * The state of the packet whose flow this is, its entry refreshed (entry
 * programs call this). An ICMP error is related only if the packet it quotes
 * came from the error's destination (else anyone could wrap anything in an
 * error quoting a tracked connection); `from_endpoint`: the error comes from
 * a pod, which is no router, so the quoted packet must also have been for
 * the pod itself. `refresh` 0 (a trace run, membrane/trace.h) only looks.
 */
static __always_inline __u32 membrane_ct_state(const struct membrane_flow *flow, int from_endpoint, int refresh)
{
	if (!flow->tracked)
		return MBR_CT_UNTRACKED;
	const __u64 now = membrane_ct_now();
	struct mbr_ct_key reversed;
	if (flow->icmp_error) {
		if (flow->quoted.saddr != flow->key.daddr || (from_endpoint && flow->quoted.daddr != flow->key.saddr))
			return MBR_CT_NEW;
		if (membrane_ct_find(&flow->quoted, now))
			return MBR_CT_RELATED;
		membrane_ct_reverse(&flow->quoted, &reversed);
		return membrane_ct_find(&reversed, now) ? MBR_CT_RELATED : MBR_CT_NEW;
	}
	struct mbr_ct_value *entry = membrane_ct_find(&flow->key, now);
	if (entry) {
		if (refresh)
			membrane_ct_refresh(entry, flow, 0, now);
		return MBR_CT_ESTABLISHED;
	}
	membrane_ct_reverse(&flow->key, &reversed);
	entry = membrane_ct_find(&reversed, now);
	if (entry) {
		if (refresh)
			membrane_ct_refresh(entry, flow, 1, now);
		return MBR_CT_REPLY;
	}
	return MBR_CT_NEW;
}

/* membrane_ct_state with the entry refreshed: what entry programs call for a packet on the wire. */
static __always_inline __u32 membrane_ct_lookup(const struct membrane_flow *flow, int from_endpoint)
{
	return membrane_ct_state(flow, from_endpoint, 1);
}

/*
 * Tracks the connection this packet opens, so that its further packets are
 * ESTABLISHED and its answers REPLY. For a stage that lets a MBR_CT_NEW
 * packet through; a live entry is left as it is (its state kept). Returns 0
 * or the map update's error (the table cannot be full: it evicts its least
 * recently used entry).
 */
static __always_inline int membrane_ct_create(const struct membrane_flow *flow)
{
	if (!flow->tracked || flow->icmp_error)
		return 0;
	const __u64 now = membrane_ct_now();
	if (membrane_ct_find(&flow->key, now))
		return 0;
	struct mbr_ct_value entry = {
		.expires_ns = now + membrane_ct_timeout(flow->key.protocol, 0),
	};
	return bpf_map_update_elem(&mbr_ct_v1, &flow->key, &entry, BPF_ANY);
}

/*
 * SDK 1.6. membrane_ct_create() for a stage, which may run in a trace
 * (membrane/trace.h): there it tracks nothing, so that a trace leaves the
 * table as it found it. What stages call.
 */
static __always_inline int membrane_ct_track(const struct __sk_buff *skb, const struct membrane_flow *flow)
{
	return membrane_tracing(skb) ? 0 : membrane_ct_create(flow);
}

#endif /* MEMBRANE_CONNTRACK_H */
