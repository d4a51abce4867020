// SPDX-License-Identifier: Apache-2.0
/*
 * The core entry programs: each parses nothing it does not need, fills the
 * per-packet context and hands the packet to the pipeline. Read it as the
 * table of contents of the datapath; the details live in lib/.
 *
 *   mbr_from_netdev    tc ingress of the node's devices (agent.devices): IPv4
 *                      identified from the ipcache, this node's own pods and
 *                      address refused as sources; the overlay's packets for
 *                      a local pod decapsulated and handed on as overlay ones
 *   mbr_from_endpoint  tc ingress of a pod's host veth: the pod's own address
 *                      and MAC checked (anti-spoofing), ARP answered here,
 *                      IPv4 identified (endpoints map, ipcache) and piped,
 *                      anything else dropped
 *   mbr_from_overlay   tc ingress of the overlay device: the source identity
 *                      comes with the tunnel key; the packet is for this node
 *   mbr_deliver_local  not an entry: the kernel's program in pipeline slot
 *                      MBR_STAGE_DELIVERY (put there by the registry)
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h"
#include "membrane/contract.h"
#include "membrane/endpoints.h"
#include "membrane/ipcache.h"
#include "membrane/monitor.h"
#include "membrane/pipeline.h"
#include "membrane/stats.h"

#include "lib/arp.h"
#include "lib/delivery.h"
#include "lib/eth.h"
#include "lib/overlay.h"
#include "lib/source_check.h"
#include "lib/trace_request.h"

/* `trace`: MBR_CTX_F_TRACE for the agent's trace run (trace_request.h), else 0. */
static __always_inline void ctx_init(struct __sk_buff *skb, __u32 direction, __u32 trace, __u32 src_identity,
				    __u32 dst_identity, __u32 ct_state)
{
	struct membrane_ctx ctx = {
		.src_identity = src_identity,
		.dst_identity = dst_identity,
		.flags = direction | (ct_state << MBR_CTX_CT_SHIFT) | trace,
		.stage = MBR_EVENT_STAGE_ENTRY, /* until the pipeline runs a stage */
		.magic = MBR_CTX_MAGIC,
	};
	membrane_ctx_store(skb, &ctx);
}

/* The connection tracking state of an IPv4 packet (conntrack.h); its entry's lifetime moves on, unless traced. */
static __always_inline __u32 ct_state_of(struct __sk_buff *skb, int from_endpoint, __u32 trace)
{
	struct membrane_flow flow;
	if (membrane_flow_of(skb, &flow) != 0)
		return MBR_CT_UNTRACKED;
	return membrane_ct_state(&flow, from_endpoint, !trace);
}

/*
 * An entry program's drop, before it knows the packet's identities: the
 * context says where it came from, for the monitor (membrane/monitor.h).
 */
static __always_inline int drop_at_entry(struct __sk_buff *skb, __u32 direction, __u32 trace, __u16 reason)
{
	ctx_init(skb, direction, trace, MBR_IDENTITY_UNKNOWN, MBR_IDENTITY_UNKNOWN, MBR_CT_UNTRACKED);
	return membrane_report_drop(skb, reason, 0);
}

/*
 * A packet the overlay brought, decapsulated by the kernel's VXLAN device
 * (mbr_from_overlay) or in BPF on the node device (mbr_from_netdev): its
 * identities, then the pipeline.
 */
static __always_inline int from_overlay(struct __sk_buff *skb, __u32 trace, const struct overlay_tunnel *tunnel)
{
	const struct iphdr *ip = ipv4_header(skb);
	if (!ip)
		return drop_at_entry(skb, MBR_DIR_FROM_OVERLAY, trace, MBR_STAT_DROP_INVALID);
	/*
	 * A node's own stack sends as REMOTE_NODE (its node routes say so); no
	 * peer may claim to be this node's host. A node identity is believed
	 * only from the node itself (inner source = outer source): a pod's
	 * packet that some node's stack forwarded into the tunnel (its routing
	 * stage gone, or fragmented there) carries VNI 4 but the pod's address.
	 */
	const __u32 src_identity = tunnel->vni == MBR_IDENTITY_HOST ? MBR_IDENTITY_REMOTE_NODE : tunnel->vni;
	if (src_identity == MBR_IDENTITY_REMOTE_NODE && bpf_ntohl(ip->saddr) != tunnel->remote_ipv4)
		return drop_at_entry(skb, MBR_DIR_FROM_OVERLAY, trace, MBR_STAT_DROP_SPOOFED);
	const __u32 dst_identity = membrane_ipcache_identity(ip->daddr);
	/*
	 * The inner frame keeps the sender's MACs, so the stack would take a
	 * packet for this node's own address as PACKET_OTHERHOST and drop it.
	 * Only that one is made the host's: pods are delivered in BPF, and
	 * anything else stays OTHERHOST, so the overlay cannot use this node
	 * as a router.
	 */
	if (dst_identity == MBR_IDENTITY_HOST)
		bpf_skb_change_type(skb, PACKET_HOST);
	ctx_init(skb, MBR_DIR_FROM_OVERLAY, trace, src_identity, dst_identity, ct_state_of(skb, 0, trace));
	membrane_count(skb, MBR_STAT_ENTRY_FROM_OVERLAY);
	return membrane_run_from(skb, 0);
}

/*
 * tc ingress of a node device (agent.devices). An IPv4 packet's identities
 * come from the ipcache: with direct routing another node's pod arrives here
 * with its own address, which the ipcache maps to that pod's identity (the
 * underlay is trusted to say who sent it, as with any unencrypted direct
 * routing). What the underlay can never be is this node: a packet arriving
 * from outside with the source of a local pod or of this node's own address
 * is spoofed, and would otherwise carry that identity into every stage.
 */
SEC("tc")
int mbr_from_netdev(struct __sk_buff *skb)
{
	const __u32 trace = trace_requested(skb);
	__u32 src_identity = MBR_IDENTITY_UNKNOWN;
	__u32 dst_identity = MBR_IDENTITY_UNKNOWN;
	__u32 ct_state = MBR_CT_UNTRACKED;
	if (eth_protocol(skb) == ETH_P_IP) {
		const struct iphdr *ip = ipv4_header(skb);
		if (!ip)
			return drop_at_entry(skb, MBR_DIR_FROM_NETDEV, trace, MBR_STAT_DROP_INVALID);
		src_identity = membrane_ipcache_identity(ip->saddr);
		if (src_identity == MBR_IDENTITY_HOST || membrane_endpoint_lookup(ip->saddr))
			return drop_at_entry(skb, MBR_DIR_FROM_NETDEV, trace, MBR_STAT_DROP_SPOOFED);
		dst_identity = membrane_ipcache_identity(ip->daddr);
		/* What is for this node's own stack (the overlay's UDP among it) meets no stage that tracks. */
		if (dst_identity != MBR_IDENTITY_HOST)
			ct_state = ct_state_of(skb, 0, trace);
		/* A trace run asks about the packet it built, never one the overlay carries. */
		struct overlay_tunnel tunnel;
		if (dst_identity == MBR_IDENTITY_HOST && !trace) {
			switch (overlay_decapsulate(skb, ip, &tunnel)) {
			case OVERLAY_DECAPSULATED:
				return from_overlay(skb, 0, &tunnel);
			case OVERLAY_BROKEN:
				return drop_at_entry(skb, MBR_DIR_FROM_OVERLAY, 0, MBR_STAT_DROP_INVALID);
			default:
				break;
			}
		}
	}
	ctx_init(skb, MBR_DIR_FROM_NETDEV, trace, src_identity, dst_identity, ct_state);
	membrane_count(skb, MBR_STAT_ENTRY_FROM_NETDEV);
	return membrane_run_from(skb, 0);
}

/*
 * tc ingress of the host side of a pod's veth: what the pod sends. Only
 * IPv4 and ARP from the pod's own address and MAC get through.
 */
SEC("tc")
int mbr_from_endpoint(struct __sk_buff *skb)
{
	const __u32 trace = trace_requested(skb);
	int verdict = TC_ACT_OK;
	/* The kernel moves a VLAN tag into metadata before tc: the frame itself looks untagged. */
	switch (skb->vlan_present ? ETH_P_8021Q : eth_protocol(skb)) {
	case ETH_P_ARP:
		/* Whatever skb->cb held on the way in, the context below is what counting reads. */
		ctx_init(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_IDENTITY_UNKNOWN, MBR_IDENTITY_UNKNOWN, MBR_CT_UNTRACKED);
		switch (arp_from_endpoint(skb, &verdict)) {
		case ARP_ANSWERED:
			return verdict;
		case ARP_SPOOFED:
			return drop_at_entry(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_STAT_DROP_SPOOFED);
		case ARP_INVALID:
			return drop_at_entry(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_STAT_DROP_INVALID);
		default:
			return TC_ACT_OK;
		}
	case ETH_P_IP:
		break;
	default:
		/* IPv6 (and ND), VLAN tags...: until supported, nothing bypasses the datapath. */
		return drop_at_entry(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_STAT_DROP_NOT_IPV4);
	}
	const struct iphdr *ip = ipv4_header(skb);
	const struct ethhdr *eth = eth_header(skb);
	if (!ip || !eth)
		return drop_at_entry(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_STAT_DROP_INVALID);
	const struct mbr_endpoint_value *source = endpoint_owning_source(skb, ip->saddr, eth->h_source);
	if (!source)
		return drop_at_entry(skb, MBR_DIR_FROM_ENDPOINT, trace, MBR_STAT_DROP_SPOOFED);
	const __u32 dst_identity = membrane_ipcache_identity(ip->daddr);
	ctx_init(skb, MBR_DIR_FROM_ENDPOINT, trace, source->identity, dst_identity, ct_state_of(skb, 1, trace));
	membrane_count(skb, MBR_STAT_ENTRY_FROM_ENDPOINT);
	return membrane_run_from(skb, 0);
}

/* tc ingress of the overlay device (collect-metadata mode): decapsulated packets. */
SEC("tc")
int mbr_from_overlay(struct __sk_buff *skb)
{
	if (eth_protocol(skb) != ETH_P_IP)
		return TC_ACT_OK;
	const __u32 trace = trace_requested(skb);
	/* The sending node put the source identity in the tunnel id (VNI). */
	struct overlay_tunnel tunnel;
	if (trace) {
		/* A test run carries no tunnel metadata: the request says what the sender's key would hold. */
		tunnel.vni = skb->cb[2];
		tunnel.remote_ipv4 = skb->cb[3];
	} else {
		struct bpf_tunnel_key key = {};
		if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) != 0)
			return drop_at_entry(skb, MBR_DIR_FROM_OVERLAY, trace, MBR_STAT_DROP_INVALID); /* not from a collect-md tunnel */
		tunnel.vni = key.tunnel_id;
		tunnel.remote_ipv4 = key.remote_ipv4;
	}
	return from_overlay(skb, trace, &tunnel);
}

/* Pipeline slot MBR_STAGE_DELIVERY (kernel-owned): into a local pod, or on. */
SEC("tc")
int mbr_deliver_local(struct __sk_buff *skb)
{
	if (eth_protocol(skb) != ETH_P_IP)
		return membrane_next_stage(skb, MBR_STAGE_DELIVERY);
	int verdict = TC_ACT_OK;
	switch (deliver_to_local_endpoint(skb, &verdict)) {
	case DELIVERY_REDIRECTED:
		return verdict;
	case DELIVERY_INVALID:
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	default:
		return membrane_next_stage(skb, MBR_STAGE_DELIVERY);
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
