/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlay's receive side on the node device: a VXLAN packet from another
 * node (membrane/overlay.h) for a pod of this node is decapsulated here, in
 * BPF, and goes on as mbr_from_overlay's would; the kernel's VXLAN device
 * (UDP socket, GRO cells, a second tc pass) cost the bulk stream about a
 * tenth of its rate. Everything else stays the kernel's: the device
 * decapsulates it and mbr_from_overlay runs, as before: what is for this
 * node's own stack (its inner frame's protocol and MACs must reach the
 * device), a packet whose TTL runs out here (its ICMP answer goes back
 * through the device's tunnel key), fragments, a VLAN tag, a wrong outer
 * IPv4 header checksum or length or a non-zero outer UDP checksum (the
 * kernel checks them), VXLAN flags beyond "VNI valid", a congestion mark on
 * a packet that cannot carry it (the device drops those).
 */
#ifndef MBR_LIB_OVERLAY_H
#define MBR_LIB_OVERLAY_H

#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h" /* MBR_IP_MF, MBR_IP_OFFSET */
#include "membrane/endpoints.h"
#include "membrane/overlay.h"
#include "membrane/routing.h" /* membrane_ipv4_store_byte */

/* bpf_skb_adjust_room(): reset the UDP tunnel's offload state on decapsulation (bpf-next, 2026). */
#define ADJ_ROOM_DECAP_L4_UDP (1ULL << 10)

/* What the outer headers said, as bpf_skb_get_tunnel_key() gives it. */
struct overlay_tunnel {
	__u32 vni;         /* the sender's identity */
	__u32 remote_ipv4; /* the sending node, host byte order */
};

enum overlay_decap_result {
	OVERLAY_LEFT = 0,         /* not ours to take: the packet is as it was, for the VXLAN device */
	OVERLAY_DECAPSULATED = 1, /* now the pod's packet; `tunnel` says what the outer headers did */
	OVERLAY_BROKEN = 2,       /* a helper failed half-way: drop */
};

/*
 * Marks the decapsulated packet's IPv4 header Congestion Experienced, as the
 * kernel's tunnels do when a router on the underlay marked the outer one.
 */
static __always_inline int mark_congestion_experienced(struct __sk_buff *skb, const struct iphdr *inner)
{
	return membrane_ipv4_store_byte(skb, ETH_HLEN, offsetof(struct iphdr, tos), inner->tos, inner->tos | MBR_ECN_CE);
}

/*
 * Takes the IPv4 packet at the node device (`outer`, read before any
 * change) when it is a VXLAN packet for a local pod that the VXLAN device
 * would accept, and leaves the pod's packet: the outer headers gone, the
 * tunnel's fields in `tunnel`, the outer ECN carried in.
 */
static __always_inline enum overlay_decap_result overlay_decapsulate(struct __sk_buff *skb, const struct iphdr *outer,
								      struct overlay_tunnel *tunnel)
{
	/* A VLAN tag (kept in metadata) or a frame for another MAC: the stack's decisions, not ours. */
	if (skb->vlan_present || skb->pkt_type != PACKET_HOST)
		return OVERLAY_LEFT;
	if (outer->protocol != IPPROTO_UDP || outer->ihl != sizeof(struct iphdr) / 4 ||
	    (outer->frag_off & bpf_htons(MBR_IP_MF | MBR_IP_OFFSET)))
		return OVERLAY_LEFT;
	const __be16 port = membrane_overlay_port();
	if (port == 0)
		return OVERLAY_LEFT;
	struct membrane_vxlan_headers headers;
	struct iphdr inner;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &headers, sizeof(headers)) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(headers), &inner, sizeof(inner)) < 0)
		return OVERLAY_LEFT;
	/*
	 * tc runs before the stack's IPv4 receive, so what it would check is
	 * checked here: the outer header's checksum and lengths (the stack would
	 * trim a longer frame to them; a GRO aggregate past 64 KB says 0).
	 */
	const struct iphdr outer_header = headers.ip;
	const __u32 outer_length = skb->len - ETH_HLEN;
	if (membrane_ipv4_header_sum(&outer_header) != 0xffff || bpf_ntohs(headers.ip.tot_len) != outer_length ||
	    bpf_ntohs(headers.udp.len) != outer_length - sizeof(struct iphdr))
		return OVERLAY_LEFT;
	if (headers.udp.dest != port || headers.udp.check != 0 || headers.vxlan.flags != bpf_htonl(MBR_VXLAN_FLAGS) ||
	    (headers.vxlan.vni & bpf_htonl(0xff)) || headers.inner_eth.h_proto != bpf_htons(ETH_P_IP) ||
	    inner.version != 4 || inner.ihl < 5 || inner.ttl <= 1 || !membrane_endpoint_lookup(inner.daddr))
		return OVERLAY_LEFT;
	/* Congestion marked on the way, for a packet that cannot carry the mark: the device drops it. */
	const int congestion = (headers.ip.tos & MBR_ECN_MASK) == MBR_ECN_CE;
	if (congestion && (inner.tos & MBR_ECN_MASK) == MBR_ECN_NOT_ECT)
		return OVERLAY_LEFT;
	/*
	 * The outer IPv4, UDP and VXLAN headers and the inner Ethernet header go; the
	 * outer Ethernet header stays (delivery rewrites it). The inner segments keep
	 * their size, and the checksum state stays what the device reported (the
	 * level is moved below). A GRO aggregate also carries the tunnel's offload
	 * state (skb->encapsulation, SKB_GSO_UDP_TUNNEL), which the device's receive
	 * path resets: only a kernel that knows ADJ_ROOM_DECAP_L4_UDP (newer than
	 * 6.18) resets it here. Elsewhere it stays, which matters only to a pod that
	 * forwards the packet out of a device with tunnel offloads; an unknown flag
	 * is refused before the packet is touched, so the plain decapsulation follows.
	 */
	const __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_NO_CSUM_RESET;
	if (bpf_skb_adjust_room(skb, -(__s32)MBR_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags | ADJ_ROOM_DECAP_L4_UDP) < 0 &&
	    bpf_skb_adjust_room(skb, -(__s32)MBR_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) < 0)
		return OVERLAY_LEFT;
	/* As the kernel's UDP receive does for a zero checksum: the level a device validated was the outer one. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_DEC);
	if (congestion && mark_congestion_experienced(skb, &inner) < 0)
		return OVERLAY_BROKEN;
	/* Addressed to this node's MAC, but it is no packet for the node's stack: should no stage
	 * deliver it, the stack drops it, as it drops what the VXLAN device hands it for another host. */
	bpf_skb_change_type(skb, PACKET_OTHERHOST);
	tunnel->vni = bpf_ntohl(headers.vxlan.vni) >> 8;
	tunnel->remote_ipv4 = bpf_ntohl(headers.ip.saddr);
	return OVERLAY_DECAPSULATED;
}

#endif /* MBR_LIB_OVERLAY_H */
