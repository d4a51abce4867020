/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The overlay's wire format (SDK 1.10): VXLAN over UDP/IPv4, the VNI holding
 * the sender's security identity, outer UDP checksum 0. The kernel's VXLAN
 * device in collect-metadata mode writes and reads exactly this, so a packet
 * made here and one made by the device are the same on the wire, and either
 * side of a pair of nodes may use either path.
 *
 * mbr_overlay_v1 says which UDP port the overlay uses on this node: the
 * routing module that owns the overlay (routing-vxlan) writes it; 0 (no
 * overlay) leaves every packet to the kernel's device. The core reads it to
 * decapsulate, on the node device, what is for a local pod (bpf/lib/overlay.h).
 */
#ifndef MEMBRANE_OVERLAY_H
#define MEMBRANE_OVERLAY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mbr_overlay_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_overlay_v1 SEC(".maps");

struct membrane_vxlan_header {
	__be32 flags; /* MBR_VXLAN_FLAGS: the "VNI valid" bit alone */
	__be32 vni;   /* the VNI in the upper 24 bits */
};

#define MBR_VXLAN_FLAGS 0x08000000u

/* The ECN field of the IPv4 TOS byte (RFC 3168), which both ends of the overlay carry across it. */
#define MBR_ECN_MASK 0x03
#define MBR_ECN_NOT_ECT 0x00
#define MBR_ECN_ECT_0 0x02
#define MBR_ECN_CE 0x03
/* What one packet gains: outer IPv4, UDP, VXLAN and the inner Ethernet header. */
#define MBR_VXLAN_OVERHEAD (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct membrane_vxlan_header) + ETH_HLEN)

/* Every header between the outer Ethernet header and the inner IPv4 one, as on the wire. */
struct membrane_vxlan_headers {
	struct iphdr ip;
	struct udphdr udp;
	struct membrane_vxlan_header vxlan;
	struct ethhdr inner_eth;
} __attribute__((packed));

/*
 * The one's complement sum of a 20-byte IPv4 header's 16-bit words, folded:
 * its checksum is ~sum over the header with a zero check field, and a
 * received header is intact when the sum over it is 0xffff.
 */
static __always_inline __u16 membrane_ipv4_header_sum(const struct iphdr *ip)
{
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The overlay's UDP port on this node (network byte order), 0 when there is none. */
static __always_inline __be16 membrane_overlay_port(void)
{
	const __u32 zero = 0;
	const struct mbr_overlay_config *config = bpf_map_lookup_elem(&mbr_overlay_v1, &zero);
	return config ? config->vxlan_port : 0;
}

#endif /* MEMBRANE_OVERLAY_H */
