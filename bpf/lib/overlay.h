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
 * through the device's tunnel key), fragments, a wrong outer IPv4 header
 * checksum or a non-zero outer UDP one (the kernel checks them), VXLAN flags
 * beyond "VNI valid" (the device drops them).
 */
#ifndef MBR_LIB_OVERLAY_H
#define MBR_LIB_OVERLAY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/endpoints.h"
#include "membrane/overlay.h"

#ifndef IP_MF
#define IP_MF 0x2000
#endif
#ifndef IP_OFFSET
#define IP_OFFSET 0x1fff
#endif

/* What the outer headers said, as bpf_skb_get_tunnel_key() gives it. */
struct overlay_tunnel {
	__u32 vni;         /* the sender's identity */
	__u32 remote_ipv4; /* the sending node, host byte order */
};

/*
 * 1 when the IPv4 packet at the node device (`outer`, read before any
 * change) was a VXLAN packet for a local pod and is now that pod's packet:
 * the outer headers gone, the tunnel's fields in `tunnel`. 0 leaves the
 * packet as it was, for the kernel's VXLAN device.
 */
static __always_inline int overlay_decapsulate(struct __sk_buff *skb, const struct iphdr *outer,
					       struct overlay_tunnel *tunnel)
{
	if (outer->protocol != IPPROTO_UDP || outer->ihl != sizeof(struct iphdr) / 4 ||
	    (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return 0;
	const __be32 outer_source = outer->saddr; /* read before the helpers below move the data */
	const __be16 port = membrane_overlay_port();
	if (port == 0)
		return 0;
	struct membrane_vxlan_headers headers;
	struct iphdr inner;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &headers, sizeof(headers)) < 0 ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(headers), &inner, sizeof(inner)) < 0)
		return 0;
	/* tc runs before the stack's IPv4 receive, so the outer header's checksum is checked here, as it would. */
	const struct iphdr outer_header = headers.ip;
	if (membrane_ipv4_header_sum(&outer_header) != 0xffff)
		return 0;
	if (headers.udp.dest != port || headers.udp.check != 0 || headers.vxlan.flags != bpf_htonl(MBR_VXLAN_FLAGS) ||
	    (headers.vxlan.vni & bpf_htonl(0xff)) || headers.inner_eth.h_proto != bpf_htons(ETH_P_IP) ||
	    inner.version != 4 || inner.ihl < 5 || inner.ttl <= 1 || !membrane_endpoint_lookup(inner.daddr))
		return 0;
	/* The outer IPv4, UDP and VXLAN headers and the inner Ethernet header go; the
	 * outer Ethernet header stays (delivery rewrites it). The inner segments keep their size. */
	if (bpf_skb_adjust_room(skb, -(__s32)MBR_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return 0;
	/* As the kernel's UDP receive does for a zero checksum: the level a device validated was the outer one. */
	bpf_csum_level(skb, BPF_CSUM_LEVEL_DEC);
	/* Addressed to this node's MAC, but it is no packet for the node's stack: should no stage
	 * deliver it, the stack drops it, as it drops what the VXLAN device hands it for another host. */
	bpf_skb_change_type(skb, PACKET_OTHERHOST);
	tunnel->vni = bpf_ntohl(headers.vxlan.vni) >> 8;
	tunnel->remote_ipv4 = bpf_ntohl(outer_source);
	return 1;
}

#endif /* MBR_LIB_OVERLAY_H */
