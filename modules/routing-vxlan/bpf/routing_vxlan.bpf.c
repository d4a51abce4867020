// SPDX-License-Identifier: Apache-2.0
/*
 * routing-vxlan's pipeline stage (MBR_STAGE_ROUTING): a packet from a local
 * pod to a prefix another node holds is encapsulated for that node (outer
 * destination), the VNI holding the source's security identity
 * (membrane/overlay.h). Here, in BPF, and sent straight out of the underlay
 * device the FIB names (its answer kept per CPU for 20 ms: underlay_hop()):
 * the VXLAN device's own transmit path (a route lookup
 * per packet, the tunnel's output hooks) cost the bulk stream about a tenth of
 * its rate. What this path cannot take (no route or neighbour answer, an
 * underlay MTU too small for the overlay's, a helper the kernel refuses)
 * leaves through the VXLAN device in collect-metadata mode with a tunnel key,
 * as before: the same packet on the wire. Everything else goes on down the
 * pipeline untouched. The receiving node's core reads the identity back
 * (mbr_from_netdev or mbr_from_overlay) and delivers.
 */
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/overlay.h"
#include "membrane/pipeline.h"
#include "membrane/routing.h"
#include "membrane/stats.h"

#include "routing_vxlan_config.h"

/* A VXLAN network identifier has 24 bits; an identity beyond cannot travel. */
#define VXLAN_VNI_MAX 0xffffffu
#define OUTER_TTL 64
#ifndef IP_DF
#define IP_DF 0x4000 /* don't fragment (frag_off) */
#endif

/*
 * Written by the module after load and before the stage is filled, so the
 * program never runs without it. Not pinned: each generation has its own,
 * so a reload that changes the device switches atomically with the slot.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct routing_vxlan_config);
} routing_vxlan_cfg SEC(".maps");

/*
 * What the FIB answered for the way to a node, kept per CPU for
 * UNDERLAY_HOP_LIFETIME_NS: the lookup was a third of this stage's time per
 * packet, and a stream sends tens of thousands of packets a second to one
 * node. A route or neighbour change on the underlay takes effect within
 * the lifetime and a tick of the coarse clock (the kernel's VXLAN device
 * keeps a route per destination too, invalidated by the routing table's
 * generation, which BPF cannot see). One entry per node: an answer for
 * another pod's veth (the FIB's input interface, which policy routing may
 * match) is looked up again and written over it, so the map never holds
 * more than the nodes this one sends to. Not pinned: each generation
 * starts with an empty cache. Only complete answers are kept; while the
 * next hop's MAC is unresolved every packet asks the FIB. A trace run
 * (membrane/trace.h) reads the cache but never writes it.
 */
#define UNDERLAY_HOP_LIFETIME_NS (20ull * 1000 * 1000)
#define UNDERLAY_HOPS_MAX 1024 /* nodes; each holds a value per CPU */

/*
 * Laid out so that a copy torn by another CPU reusing the entry (which
 * zeroes every CPU's value) shows: the first and last fields and the key's
 * fields are checked on the copy.
 */
struct underlay_hop {
	__u64 expires_ns;         /* coarse monotonic clock */
	__be32 node;              /* the key, again */
	__u32 ingress_ifindex;    /* the FIB's input interface: the pod's host veth */
	__u32 checked_len;        /* the outer length the route's MTU was checked against */
	__u32 ifindex;            /* the underlay device */
	__be32 saddr;             /* the outer source */
	__u8 smac[ETH_ALEN];
	__u8 dmac[ETH_ALEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, UNDERLAY_HOPS_MAX);
	__type(key, __be32);
	__type(value, struct underlay_hop);
} routing_vxlan_hops SEC(".maps");

enum hop_result {
	HOP_NONE = 0,     /* no way this path can take: the VXLAN device's */
	HOP_COMPLETE = 1, /* device, outer source and both MACs */
	HOP_NO_NEIGH = 2, /* device, outer source and the next hop's address, its MAC unresolved */
};

/* Whether `hop`, a copy of this CPU's cached value, is a fresh and whole answer for these inputs. */
static __always_inline int underlay_hop_usable(const struct underlay_hop *hop, __be32 node, __u32 ingress_ifindex,
					       __u32 outer_len, __u64 now)
{
	const __u8 dmac_bits = hop->dmac[0] | hop->dmac[1] | hop->dmac[2] | hop->dmac[3] | hop->dmac[4] | hop->dmac[5];
	return hop->expires_ns > now && hop->node == node && hop->ingress_ifindex == ingress_ifindex &&
	       hop->checked_len == outer_len && hop->ifindex != 0 && hop->saddr != 0 && dmac_bits != 0;
}

/*
 * The way out to `node` for outer packets of up to `outer_len` bytes: from
 * this CPU's cache while fresh, else from the FIB (and then cached).
 * `neighbour`: the next hop's address, for HOP_NO_NEIGH.
 */
static __always_inline enum hop_result underlay_hop(struct __sk_buff *skb, __be32 node, __u32 outer_len,
						    struct underlay_hop *hop, __be32 *neighbour)
{
	const __u32 ingress_ifindex = skb->ingress_ifindex;
	const __u64 now = bpf_ktime_get_coarse_ns();
	struct underlay_hop *cached = bpf_map_lookup_elem(&routing_vxlan_hops, &node);
	if (cached) {
		*hop = *cached;
		if (underlay_hop_usable(hop, node, ingress_ifindex, outer_len, now))
			return HOP_COMPLETE;
	}
	/*
	 * The largest outer packet this overlay sends (a segment of the
	 * overlay's MTU, headers added) must fit the route to that node: a
	 * smaller route or device MTU is FRAG_NEEDED, and the device, which
	 * fragments the outer packet, takes it.
	 */
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.tot_len = outer_len,
		.ifindex = ingress_ifindex,
		.ipv4_dst = node,
	};
	const long found = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SRC);
	if ((found != BPF_FIB_LKUP_RET_SUCCESS && found != BPF_FIB_LKUP_RET_NO_NEIGH) || fib.ipv4_src == 0)
		return HOP_NONE;
	hop->expires_ns = now + UNDERLAY_HOP_LIFETIME_NS;
	hop->node = node;
	hop->ingress_ifindex = ingress_ifindex;
	hop->checked_len = outer_len;
	hop->ifindex = fib.ifindex;
	hop->saddr = fib.ipv4_src;
	if (found == BPF_FIB_LKUP_RET_NO_NEIGH) {
		*neighbour = fib.ipv4_dst;
		return HOP_NO_NEIGH;
	}
	__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
	__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
	if (membrane_tracing(skb))
		return HOP_COMPLETE;
	/*
	 * This CPU's value of a present entry is written in place: an update
	 * of an LRU map takes a free element first, which could evict another
	 * node's entry. An insert that loses a race to another CPU is dropped;
	 * the next packet writes in place.
	 */
	if (cached)
		*cached = *hop;
	else
		bpf_map_update_elem(&routing_vxlan_hops, &node, hop, BPF_NOEXIST);
	return HOP_COMPLETE;
}

enum native_result {
	NATIVE_NOT_TAKEN = 0,      /* the packet is unchanged: the VXLAN device takes it */
	NATIVE_NOT_TAKEN_SEEN = 1, /* the same, reported as forwarded already */
	NATIVE_SENT = 2,           /* encapsulated and redirected: return the verdict */
	NATIVE_BROKEN = 3,         /* a helper failed half-way: drop */
};

/*
 * The outer header's ECN field, as the kernel's tunnels set it
 * (INET_ECN_encapsulate): the inner packet's ECN-capable mark, so routers
 * on the way may mark instead of drop; a mark already set (CE) is carried
 * as ECT(0), the receiving node keeping the inner CE.
 */
static __always_inline __u8 outer_ecn(__u8 inner_tos)
{
	const __u8 ecn = inner_tos & MBR_ECN_MASK;
	return ecn == MBR_ECN_CE ? MBR_ECN_ECT_0 : ecn;
}

/*
 * Everything from the start of the frame through the pod's IPv4 header, as
 * it leaves: the outer Ethernet header, the overlay's headers (the last of
 * them the pod's Ethernet header), the pod's IPv4 header (without options).
 */
struct native_frame {
	struct ethhdr eth;
	struct membrane_vxlan_headers overlay;
	struct iphdr inner;
} __attribute__((packed));
_Static_assert(offsetof(struct native_frame, inner) == ETH_HLEN + MBR_VXLAN_OVERHEAD,
	       "the pod's IPv4 header follows the overlay's headers");
_Static_assert(offsetof(struct native_frame, inner) - offsetof(struct native_frame, overlay.inner_eth) == ETH_HLEN,
	       "the pod's Ethernet and IPv4 headers are contiguous, as loaded");

/*
 * Encapsulates the packet for `route`'s node and redirects it out of the
 * underlay device, as the VXLAN device would send it: outer source the FIB's
 * for that node, UDP source port from the inner flow's hash (spreads flows
 * over ECMP and RSS), ECN from the inner packet, no DF, TTL 64, UDP checksum
 * 0. `overlay_mtu` is the VXLAN device's. The pod's packet loses one TTL,
 * written with the headers in one store; on NATIVE_NOT_TAKEN* it is as it was.
 */
static __always_inline int send_natively(struct __sk_buff *skb, const struct membrane_remote_route *route,
					 __u32 identity, __u32 overlay_mtu, __be16 port, int *verdict)
{
	/* The outer length field has 16 bits (a 64 KB UDP GSO or BIG TCP packet would wrap it). */
	if (port == 0 || skb->len - ETH_HLEN + MBR_VXLAN_OVERHEAD > 0xffff)
		return NATIVE_NOT_TAKEN;
	struct underlay_hop hop;
	__be32 neighbour = 0;
	const enum hop_result way =
		underlay_hop(skb, route->tunnel_endpoint, overlay_mtu + MBR_VXLAN_OVERHEAD, &hop, &neighbour);
	if (way == HOP_NONE)
		return NATIVE_NOT_TAKEN;

	/*
	 * Written in one store: the outer Ethernet header (when the next hop's
	 * MAC is known), then the rest. The pod's Ethernet and IPv4 headers are
	 * read in one load (they are contiguous in the frame, as on the wire).
	 */
	struct native_frame frame = {};
	struct membrane_vxlan_headers *headers = &frame.overlay;
	if (bpf_skb_load_bytes(skb, 0, (__u8 *)&frame + offsetof(struct native_frame, overlay.inner_eth),
			       ETH_HLEN + sizeof(frame.inner)) < 0)
		return NATIVE_NOT_TAKEN;
	/* Through an aligned copy: the packed member's address may be misaligned. */
	struct iphdr inner = frame.inner;
	membrane_ipv4_decrement_ttl(&inner); /* the caller checked that the TTL does not run out here */
	frame.inner = inner;
	const __u32 hash = bpf_get_hash_recalc(skb);
	/* Reported while the packet is still the pod's: the monitor reads its headers. */
	membrane_report_forward(skb, MBR_STAT_TO_OVERLAY);
	/* The inner segments keep their size (FIXED_GSO): the pod's MTU already left room for the headers. */
	const __u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |
			    BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN);
	if (bpf_skb_adjust_room(skb, MBR_VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, flags) < 0)
		return NATIVE_NOT_TAKEN_SEEN;

	const __u32 outer_length = skb->len - ETH_HLEN;
	struct iphdr outer = {
		.version = 4,
		.ihl = sizeof(struct iphdr) / 4,
		.tos = outer_ecn(route->tos),
		.tot_len = bpf_htons(outer_length),
		.id = (__be16)bpf_get_prandom_u32(),
		.ttl = OUTER_TTL,
		.protocol = IPPROTO_UDP,
		.saddr = hop.saddr,
		.daddr = route->tunnel_endpoint,
	};
	outer.check = (__sum16)~membrane_ipv4_header_sum(&outer);
	headers->ip = outer;
	headers->udp.source = bpf_htons(49152 | (hash & 0x3fff));
	headers->udp.dest = port;
	headers->udp.len = bpf_htons(outer_length - sizeof(struct iphdr));
	headers->vxlan.flags = bpf_htonl(MBR_VXLAN_FLAGS);
	headers->vxlan.vni = bpf_htonl(identity << 8);
	if (way == HOP_COMPLETE) {
		__builtin_memcpy(frame.eth.h_dest, hop.dmac, ETH_ALEN);
		__builtin_memcpy(frame.eth.h_source, hop.smac, ETH_ALEN);
		frame.eth.h_proto = bpf_htons(ETH_P_IP);
		if (bpf_skb_store_bytes(skb, 0, &frame, sizeof(frame), 0) < 0)
			return NATIVE_BROKEN;
		*verdict = bpf_redirect(hop.ifindex, 0);
		return NATIVE_SENT;
	}
	/* The outer Ethernet header stays the pod's frame's until bpf_redirect_neigh fills in the MACs. */
	if (bpf_skb_store_bytes(skb, ETH_HLEN, (const __u8 *)&frame + ETH_HLEN, sizeof(frame) - ETH_HLEN, 0) < 0)
		return NATIVE_BROKEN;
	struct bpf_redir_neigh next_hop = {.nh_family = AF_INET, .ipv4_nh = neighbour};
	*verdict = bpf_redirect_neigh(hop.ifindex, &next_hop, sizeof(next_hop), 0);
	return NATIVE_SENT;
}

SEC("tc")
int routing_vxlan_stage(struct __sk_buff *skb)
{
	struct membrane_remote_route route;
	const __u32 zero = 0;

	if (!membrane_remote_route(skb, &route))
		return membrane_next_stage(skb, MBR_STAGE_ROUTING);
	/* The node routes the packet, so it counts as a hop, as in direct mode. */
	if (membrane_route_ttl_expires(&route))
		return membrane_route_ttl_exceeded(skb, &route);

	const struct routing_vxlan_config *config = bpf_map_lookup_elem(&routing_vxlan_cfg, &zero);
	const __u32 identity = membrane_ctx_src_identity(skb);
	if (!config || config->ifindex == 0 || identity > VXLAN_VNI_MAX)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);

	/*
	 * Over the overlay's MTU (the pod's MTU was raised, or a chained pod
	 * never had it lowered): the outer packet would be fragmented. With DF
	 * set (TCP, and any GSO packet, judged by its segments) the stack
	 * answers ICMP frag-needed and forwards nothing, so path MTU discovery
	 * works through the overlay. Without DF it is dropped: the stack would
	 * fragment it into the node route, whose VNI says "remote node", and
	 * the receiving node refuses a node identity with a pod's address.
	 */
	__u32 mtu_len = 0;
	if (bpf_check_mtu(skb, config->ifindex, &mtu_len, 0, BPF_MTU_CHK_SEGS) != BPF_MTU_CHK_RET_SUCCESS) {
		__be16 frag_off = 0;
		if (bpf_skb_load_bytes(skb, route.l3_offset + offsetof(struct iphdr, frag_off), &frag_off,
				       sizeof(frag_off)) < 0 ||
		    !(frag_off & bpf_htons(IP_DF)))
			return membrane_report_drop(skb, MBR_STAT_DROP_OVERSIZE, 0);
		membrane_count(skb, MBR_STAT_OVERSIZE_TO_STACK);
		return TC_ACT_OK;
	}

	int verdict = TC_ACT_SHOT;
	const int native = send_natively(skb, &route, identity, mtu_len, membrane_overlay_port(), &verdict);
	if (native == NATIVE_SENT)
		return verdict;
	if (native == NATIVE_BROKEN || membrane_route_decrement_ttl(skb, &route) < 0)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	struct bpf_tunnel_key key = {
		.remote_ipv4 = bpf_ntohl(route.tunnel_endpoint), /* the helper wants host order */
		.tunnel_id = identity,
		.tunnel_ttl = OUTER_TTL,
	};
	/* No outer UDP checksum: the inner packet carries its own (as Cilium does). */
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	if (native != NATIVE_NOT_TAKEN_SEEN)
		membrane_report_forward(skb, MBR_STAT_TO_OVERLAY);
	return bpf_redirect(config->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
