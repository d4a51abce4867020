// SPDX-License-Identifier: Apache-2.0
/*
 * service-lb's packet-level load balancing (pipeline slot MBR_STAGE_SERVICE)
 * for what no socket program saw: a connection that enters the node from
 * outside to a NodePort, an external IP or a load balancer IP. Its frontends
 * are the SERVICE_LB_SCOPE_OUTSIDE ones, where externalTrafficPolicy applies.
 * With socket LB off (lb_stage_pods in the slot instead of lb_service_stage)
 * a pod's packets from its veth are translated too, to the frontends its
 * sockets would meet (SERVICE_LB_SCOPE_SOCKET: ClusterIPs, external and load
 * balancer IPs, NodePorts on this node's address; internalTrafficPolicy).
 * They are only DNATed, as a pod's address is routable, except a pod's
 * connection to itself (hairpin), SNATed to HAIRPIN_ADDRESS so that its
 * replies leave the pod; a pod's packet to a service without endpoints is
 * refused (reject.h).
 *
 * A client's packet (from a node device, or from another node's pod through
 * the overlay) is DNATed to a backend. When the
 * backend is on another node its source becomes this node's address and a
 * port of the SNAT range, so the reply comes back here (externalTrafficPolicy
 * Cluster); a backend on this node sees the client's own address. The packet
 * goes on down the pipeline with MBR_CTX_F_SERVICE_NAT set, so the routing
 * stage carries it to another node as it carries a pod's packet, or the
 * delivery stage into the pod. The backend's reply, from whichever way it
 * comes in (the pod's veth, the overlay, a device), is translated back by
 * its tuple in service_lb_nat_v1 and sent out toward the client from here
 * (a FIB lookup and a redirect: the stack would take a packet with this
 * node's address as source, coming in from a pod, for a martian), or, for
 * a client that is another node's pod, handed to the routing stage.
 *
 * The choice is the service's Maglev table's for the connection's hash
 * (flow_hash.h): every node holds the same table, so a connection goes to
 * the same backend whichever node it enters (random while a table is
 * missing). It is kept per connection (the NAT entries, one per
 * direction), checked at each packet to still serve the service. The
 * entries live as conntrack's do, refreshed by their packets:
 * an expired one counts as absent and its SNAT port is free again, and a
 * client packet finds its connection only while the reply entry still
 * points back to it. With sessionAffinity ClientIP a client address keeps
 * its backend.
 */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h"
#include "membrane/contract.h"
#include "membrane/endpoints.h"
#include "membrane/ipcache.h"
#include "membrane/pipeline.h"

#include "flow_hash.h"
#include "lb_map_defs.h"
#include "reject.h"

#define AF_INET 2
#define SNAT_TRIES 8
/* The source a pod's connection to itself through a service is given (Cilium's), so that its
 * own replies leave the pod and come back through this stage to be translated back. */
#define HAIRPIN_ADDRESS bpf_htonl(0xa9fe2a01) /* 169.254.42.1 */

/* What reply() and translate() return besides a tc verdict (>= 0). */
#define STAGE_NOT_OURS -1 /* no translated connection's packet: on, unchanged */
#define STAGE_GO_ON -2    /* translated: on to the next stage */
#define STAGE_BROKEN -3   /* a rewrite failed: dropped as invalid */
/* An affinity key of a client address, apart from any network namespace cookie. */
#define AFFINITY_CLIENT_ADDRESS (1ULL << 63)

/* The parts of an IPv4 TCP or UDP packet the translation reads and writes. */
struct packet {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u32 l4;          /* offset of the L4 header */
	__u32 l4_check;    /* offset of its checksum */
	__u64 csum_flags;  /* BPF_F_MARK_MANGLED_0 for UDP: a zero checksum means none */
	__u8 tcp_flags;    /* byte 13 of a TCP header */
};

static __always_inline void count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&service_lb_packets_v2, &counter);

	if (value)
		*value += 1;
}

/* 1 and `p` filled for an unfragmented (or first-fragment) IPv4 TCP or UDP packet. */
static __always_inline int parse(struct __sk_buff *skb, struct packet *p)
{
	struct iphdr ip;
	__be16 ports[2];

	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 ||
	    ip.version != 4 || ip.ihl < 5)
		return 0;
	if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP)
		return 0;
	if (bpf_ntohs(ip.frag_off) & MBR_IP_OFFSET)
		return 0; /* a later fragment has no ports to translate by */
	p->l4 = ETH_HLEN + ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, p->l4, ports, sizeof(ports)) < 0)
		return 0;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->sport = ports[0];
	p->dport = ports[1];
	p->protocol = ip.protocol;
	p->l4_check = p->l4 + (ip.protocol == IPPROTO_TCP ? 16 : 6);
	p->csum_flags = ip.protocol == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	if (ip.protocol == IPPROTO_TCP && bpf_skb_load_bytes(skb, p->l4 + 13, &p->tcp_flags, 1) < 0)
		return 0;
	return 1;
}

/* The packet's own flags for its entry: closing on a TCP FIN or RST. */
static __always_inline __u32 packet_flags(const struct packet *p)
{
	return (p->tcp_flags & (MBR_TCP_FIN | MBR_TCP_RST)) ? MBR_CT_F_CLOSING : 0;
}

/* A packet of the entry's connection: its flags and lifetime move on (written only when they change enough). */
static __always_inline void nat_refresh(struct service_lb_nat_value *entry, __u32 flags, __u8 protocol, __u64 now)
{
	flags |= entry->flags;
	const __u64 expires = now + membrane_ct_timeout(protocol, flags);
	if (flags != entry->flags || expires > entry->expires_ns + NSEC_PER_SEC) {
		entry->flags = flags;
		entry->expires_ns = expires;
	}
}

/* The key of the packet's own tuple in `direction` (SERVICE_LB_NAT_ORIGINAL, _REPLY). */
static __always_inline struct service_lb_nat_key nat_key_of(const struct packet *p, __u8 direction)
{
	struct service_lb_nat_key key = {
		.saddr = p->saddr,
		.daddr = p->daddr,
		.sport = p->sport,
		.dport = p->dport,
		.protocol = p->protocol,
		.direction = direction,
	};

	return key;
}

/* The live entry of `key`, or NULL (absent or expired). */
static __always_inline struct service_lb_nat_value *nat_find(const struct service_lb_nat_key *key, __u64 now)
{
	struct service_lb_nat_value *entry = bpf_map_lookup_elem(&service_lb_nat_v1, key);

	return entry && entry->expires_ns >= now ? entry : 0;
}

/* Rewrites the source (`offset` 12) or destination (16) address, with both checksums. */
static __always_inline int set_address(struct __sk_buff *skb, const struct packet *p, __u32 offset, __be32 from, __be32 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, p->l4_check, from, to, p->csum_flags | BPF_F_PSEUDO_HDR | sizeof(to)) < 0 ||
	    bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from, to, sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN + offset, &to, sizeof(to), 0);
}

/* Rewrites the source (`offset` 0) or destination (2) port. */
static __always_inline int set_port(struct __sk_buff *skb, const struct packet *p, __u32 offset, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	if (bpf_l4_csum_replace(skb, p->l4_check, from, to, p->csum_flags | sizeof(to)) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, p->l4 + offset, &to, sizeof(to), 0);
}

static __always_inline void set_identities(struct __sk_buff *skb, __u32 src, __u32 dst)
{
	skb->cb[0] = src;
	skb->cb[1] = dst;
	skb->cb[2] |= MBR_CTX_F_SERVICE_NAT;
}

/*
 * A backend's reply, translated back: its source becomes the service, its
 * destination the client (when it was SNATed), and it leaves toward the
 * client from here (or, for a pod, on to the delivery or routing stage).
 * STAGE_NOT_OURS when `p` is no reply of a translated connection, else
 * STAGE_GO_ON, STAGE_BROKEN or a tc verdict.
 */
static __always_inline int reply(struct __sk_buff *skb, const struct packet *p, __u64 now)
{
	const struct service_lb_nat_key key = nat_key_of(p, SERVICE_LB_NAT_REPLY);
	struct service_lb_nat_value *nat = nat_find(&key, now);

	if (!nat)
		return STAGE_NOT_OURS;
	nat_refresh(nat, MBR_CT_F_SEEN_REPLY | packet_flags(p), p->protocol, now);
	const __be32 service = nat->address;
	const __be16 service_port = nat->port;
	const __be32 client = nat->peer_address;
	const __be16 client_port = nat->peer_port;
	if (set_address(skb, p, offsetof(struct iphdr, saddr), p->saddr, service) < 0 ||
	    set_port(skb, p, 0, p->sport, service_port) < 0 ||
	    set_address(skb, p, offsetof(struct iphdr, daddr), p->daddr, client) < 0 ||
	    set_port(skb, p, 2, p->dport, client_port) < 0)
		return STAGE_BROKEN;
	const struct mbr_endpoint_value *local_client = membrane_endpoint_lookup(client);
	if (local_client) {
		/* A pod of this node (socket LB off): the delivery stage takes the reply into it. */
		count(SERVICE_LB_PACKETS_REPLIED);
		set_identities(skb, skb->cb[0], local_client->identity);
		return STAGE_GO_ON;
	}
	const struct mbr_ipcache_value *client_node = membrane_ipcache_lookup(client);
	if (client_node && client_node->tunnel_endpoint) {
		/* The client is a pod of another node (it came to this node's address): the routing stage
		 * carries the reply there as the backend's, like any pod's packet. */
		count(SERVICE_LB_PACKETS_REPLIED);
		set_identities(skb, skb->cb[0], client_node->identity);
		return STAGE_GO_ON;
	}
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = p->protocol,
		/* No tot_len: the FIB would hold a GSO super-packet's to the MTU and refuse it. */
		.ifindex = skb->ingress_ifindex,
		.ipv4_src = service,
		.ipv4_dst = client,
	};
	const long found = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (found != BPF_FIB_LKUP_RET_SUCCESS && found != BPF_FIB_LKUP_RET_NO_NEIGH) {
		count(SERVICE_LB_PACKETS_NO_ROUTE);
		return STAGE_GO_ON;
	}
	count(SERVICE_LB_PACKETS_REPLIED);
	struct bpf_redir_neigh next_hop = {
		.nh_family = AF_INET,
		.ipv4_nh = fib.ipv4_dst,
	};
	return bpf_redirect_neigh(fib.ifindex, &next_hop, sizeof(next_hop), 0);
}

/*
 * Gives the connection a source port of this node's SNAT range no other
 * connection to that backend holds, by inserting its REPLY entry: 0, or -1
 * when SNAT_TRIES random ports were all taken.
 */
static __always_inline int claim_snat_port(struct service_lb_nat_key *reply_key, const struct service_lb_nat_value *reply,
					   const struct service_lb_node *node, __u64 now)
{
	const __u32 span = (__u32)node->snat_high - node->snat_low + 1;

	for (int i = 0; i < SNAT_TRIES; i++) {
		reply_key->dport = bpf_htons(node->snat_low + bpf_get_prandom_u32() % span);
		if (bpf_map_update_elem(&service_lb_nat_v1, reply_key, reply, BPF_NOEXIST) == 0)
			return 0;
		/* Taken: by a live connection, or by one whose time ran out, whose port is free again. */
		if (!nat_find(reply_key, now) && bpf_map_update_elem(&service_lb_nat_v1, reply_key, reply, BPF_ANY) == 0)
			return 0;
	}
	return -1;
}

/* The REPLY key of the connection whose ORIGINAL entry is `nat`. */
static __always_inline void reply_key_of(const struct packet *p, const struct service_lb_nat_value *nat,
					 struct service_lb_nat_key *key)
{
	key->saddr = nat->address;
	key->daddr = nat->peer_address ? nat->peer_address : p->saddr;
	key->sport = nat->port;
	key->dport = nat->peer_address ? nat->peer_port : p->sport;
	key->protocol = p->protocol;
	key->direction = SERVICE_LB_NAT_REPLY;
	key->pad = 0;
}

/*
 * No backend for the client's packet. A pod's packet to a service without
 * endpoints is refused (a TCP SYN with a RST, UDP with an ICMP port
 * unreachable), as the socket programs refuse its connect(); anything else
 * is dropped: from outside, as kube-proxy drops for a Local traffic policy
 * (and here also for none at all), and a pod's to a Local internal traffic
 * policy without a backend on this node, as kube-proxy drops it.
 */
static __always_inline int in_source_ranges(const struct packet *p)
{
	struct service_lb_source_range_key key = {
		.prefixlen = SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS + 32,
		.address = p->daddr,
		.port = p->dport,
		.protocol = p->protocol,
		.source = p->saddr,
	};
	return bpf_map_lookup_elem(&service_lb_source_ranges_v1, &key) != 0;
}

/*
 * No backend for a new connection. A service without endpoints refuses it,
 * as kube-proxy's REJECT does (a RST, an ICMP port unreachable), to a pod of
 * this node and to a client that came in through a device (the answer goes
 * back out of it); one from another node's pod (the overlay) is dropped,
 * the answer having no tunnel to take. A traffic policy Local with
 * backends elsewhere only drops, as kube-proxy drops.
 */
static __always_inline int no_backend(struct __sk_buff *skb, const struct packet *p, const struct service_lb_value *service,
				      __u8 scope)
{
	count(SERVICE_LB_PACKETS_NO_BACKEND);
	const int answerable = scope == SERVICE_LB_SCOPE_SOCKET || membrane_ctx_direction(skb) == MBR_DIR_FROM_NETDEV;
	if (answerable && service->count == 0 && !(service->flags & SERVICE_LB_F_DROP_WHEN_EMPTY) &&
	    reject(skb, p->protocol, p->tcp_flags, p->l4) > 0)
		return bpf_redirect(skb->ingress_ifindex, 0);
	return TC_ACT_SHOT;
}

/*
 * A client's packet to a frontend of `scope`: SERVICE_LB_SCOPE_OUTSIDE for
 * what enters the node, SERVICE_LB_SCOPE_SOCKET for a pod's own packets
 * when socket LB is off. DNAT, and SNAT for a backend that must send its
 * replies back through this node: one on another node reached from outside
 * (to this node's address), or the client itself (hairpin, to
 * HAIRPIN_ADDRESS). STAGE_NOT_OURS when it is for no frontend of the
 * scope, else STAGE_GO_ON, STAGE_BROKEN or a tc verdict (dropped, refused).
 */
static __always_inline int translate(struct __sk_buff *skb, const struct packet *p, __u64 now, __u8 scope)
{
	struct service_lb_key key = {
		.address = p->daddr,
		.port = p->dport,
		.protocol = p->protocol,
		.scope = scope,
	};
	struct service_lb_value *service = bpf_map_lookup_elem(&service_lb_services_v1, &key);
	if (!service)
		return STAGE_NOT_OURS;
	const struct service_lb_nat_key original_key = nat_key_of(p, SERVICE_LB_NAT_ORIGINAL);
	struct service_lb_nat_value *known = nat_find(&original_key, now);
	struct service_lb_nat_value nat = {};
	if (known) {
		struct service_lb_backend *backend = service_backend(service, known->backend_id);
		struct service_lb_nat_key reply_key = {};
		struct service_lb_nat_value *back;

		reply_key_of(p, known, &reply_key);
		back = nat_find(&reply_key, now);
		/* Still the same backend of this service, and its replies still come back to this client:
		 * the connection goes on as it began (both directions' lifetimes move on together). */
		if (backend && backend->address == known->address && backend->port == known->port && back &&
		    back->peer_address == p->saddr && back->peer_port == p->sport && back->address == p->daddr &&
		    back->port == p->dport) {
			const __u32 flags = packet_flags(p) | (back->flags & MBR_CT_F_SEEN_REPLY);

			nat_refresh(known, flags, p->protocol, now);
			nat_refresh(back, flags & ~MBR_CT_F_SEEN_REPLY, p->protocol, now);
			nat = *known;
		}
	}
	if (!nat.backend_id) {
		struct service_lb_backend backend;
		__u32 id = 0;
		int found = 0;
		const __u32 hash = service_lb_flow_hash(p->saddr, p->sport, p->dport, p->protocol);

		/* loadBalancerSourceRanges: checked when a connection begins, as kube-proxy's nat-table rules do. */
		if ((service->flags & SERVICE_LB_F_SOURCE_RANGES) && !in_source_ranges(p)) {
			count(SERVICE_LB_PACKETS_SOURCE_RANGE);
			return TC_ACT_SHOT;
		}
		if (service->count)
			/* Maglev for connections from outside (every node holds the same tables); a pod's at random. */
			found = choose_backend(&key, service, AFFINITY_CLIENT_ADDRESS | bpf_ntohl(p->saddr),
					       scope == SERVICE_LB_SCOPE_OUTSIDE ? &hash : 0, &backend, &id);
		if (!found)
			return no_backend(skb, p, service, scope);
		nat.address = backend.address;
		nat.port = backend.port;
		nat.backend_id = id;
		nat.flags = packet_flags(p);
		nat.expires_ns = now + membrane_ct_timeout(p->protocol, nat.flags);
		struct service_lb_nat_key reply_key = {
			.saddr = backend.address,
			.daddr = p->saddr,
			.sport = backend.port,
			.dport = p->sport,
			.protocol = p->protocol,
			.direction = SERVICE_LB_NAT_REPLY,
		};
		struct service_lb_nat_value reply = {
			.address = p->daddr,
			.port = p->dport,
			.peer_address = p->saddr,
			.peer_port = p->sport,
			.flags = nat.flags,
			.expires_ns = nat.expires_ns,
		};
		/* Whether the backend's replies would miss this node, and the source that brings them back. */
		int snat = 0;
		int hairpin = backend.address == p->saddr;
		if (!hairpin && !membrane_endpoint_lookup(backend.address)) {
			const struct mbr_ipcache_value *where = membrane_ipcache_lookup(backend.address);
			const int pod_elsewhere = where && where->tunnel_endpoint;

			/* From outside, a backend that is not a pod of this node nor one of another's (a
			 * host-network or external endpoint): no stage could carry it there and back. From a
			 * pod, whose address is routable, anything but this node itself, whose stack would
			 * answer the pod without a stage to translate it back. */
			if (scope == SERVICE_LB_SCOPE_OUTSIDE ? !pod_elsewhere : where && where->identity == MBR_IDENTITY_HOST) {
				count(SERVICE_LB_PACKETS_UNREACHABLE);
				return TC_ACT_SHOT;
			}
			/* A pod's own address is routable: only a client from outside needs this node's. */
			snat = scope == SERVICE_LB_SCOPE_OUTSIDE;
		}
		if (!snat && !hairpin) {
			bpf_map_update_elem(&service_lb_nat_v1, &reply_key, &reply, BPF_ANY);
		} else {
			const __u32 zero = 0;
			const struct service_lb_node *node = bpf_map_lookup_elem(&service_lb_node_v1, &zero);
			const __be32 source = hairpin ? HAIRPIN_ADDRESS : node ? node->address : 0;

			if (!node || !source || node->snat_low == 0 || node->snat_high < node->snat_low) {
				count(SERVICE_LB_PACKETS_NO_PORT);
				return TC_ACT_SHOT;
			}
			reply_key.daddr = source;
			if (claim_snat_port(&reply_key, &reply, node, now) < 0) {
				count(SERVICE_LB_PACKETS_NO_PORT);
				return TC_ACT_SHOT;
			}
			nat.peer_address = source;
			nat.peer_port = reply_key.dport;
		}
		bpf_map_update_elem(&service_lb_nat_v1, &original_key, &nat, BPF_ANY);
	}
	if (set_address(skb, p, offsetof(struct iphdr, daddr), p->daddr, nat.address) < 0 ||
	    set_port(skb, p, 2, p->dport, nat.port) < 0)
		return STAGE_BROKEN;
	__u32 src_identity = skb->cb[0];
	if (nat.peer_address) {
		if (set_address(skb, p, offsetof(struct iphdr, saddr), p->saddr, nat.peer_address) < 0 ||
		    set_port(skb, p, 0, p->sport, nat.peer_port) < 0)
			return STAGE_BROKEN;
		if (nat.peer_address != HAIRPIN_ADDRESS)
			src_identity = MBR_IDENTITY_HOST; /* it now comes from this node (a hairpin's from its pod still) */
		count(SERVICE_LB_PACKETS_SNAT);
	}
	count(SERVICE_LB_PACKETS_TRANSLATED);
	set_identities(skb, src_identity, membrane_ipcache_identity(nat.address));
	return STAGE_GO_ON;
}

/*
 * A new TCP connection no frontend translated (its SYN), whose tuple the
 * REPLY entry of an ended translated one still holds: a client port used
 * again within that entry's last seconds, e.g. a pod that connects to a
 * backend itself right after it did through the service. Its replies are
 * its own, not to be made the service's.
 */
static __always_inline void forget_stale_reply(const struct packet *p)
{
	if (p->protocol != IPPROTO_TCP || (p->tcp_flags & (MBR_TCP_SYN | REJECT_TCP_ACK)) != MBR_TCP_SYN)
		return;
	const struct service_lb_nat_key key = {
		.saddr = p->daddr,
		.daddr = p->saddr,
		.sport = p->dport,
		.dport = p->sport,
		.protocol = p->protocol,
		.direction = SERVICE_LB_NAT_REPLY,
	};
	bpf_map_delete_elem(&service_lb_nat_v1, &key);
}

/* The stage; `pods`: this node's pods' packets are translated too (socket LB off). */
static __always_inline int service_stage(struct __sk_buff *skb, const int pods)
{
	struct packet p = {};
	int verdict = STAGE_NOT_OURS;

	if (!membrane_tracing(skb) && parse(skb, &p)) {
		const __u64 now = bpf_ktime_get_ns();
		const __u32 direction = membrane_ctx_direction(skb);

		verdict = reply(skb, &p, now);
		/* What enters from outside this node (a device, or the overlay: another node's pod that came
		 * to this node's address) meets the outside frontends; a pod of this node the ones its
		 * sockets would (socket scope), unless its connect() was translated already. */
		if (verdict == STAGE_NOT_OURS && (direction == MBR_DIR_FROM_NETDEV || direction == MBR_DIR_FROM_OVERLAY))
			verdict = translate(skb, &p, now, SERVICE_LB_SCOPE_OUTSIDE);
		else if (verdict == STAGE_NOT_OURS && pods && direction == MBR_DIR_FROM_ENDPOINT)
			verdict = translate(skb, &p, now, SERVICE_LB_SCOPE_SOCKET);
		if (verdict == STAGE_NOT_OURS)
			forget_stale_reply(&p);
	}
	/* One drop report and one hand-over for every path: each is a large inlined block. */
	if (verdict == STAGE_BROKEN)
		return membrane_report_drop(skb, MBR_STAT_DROP_INVALID, 0);
	if (verdict >= 0)
		return verdict;
	return membrane_next_stage(skb, MBR_STAGE_SERVICE);
}

/* With socket LB on: the pods' connections were translated at connect(). */
SEC("tc")
int lb_service_stage(struct __sk_buff *skb)
{
	return service_stage(skb, 0);
}

/* With socket LB off ([module.service-lb] socket_lb = false): the pods' packets too. */
SEC("tc")
int lb_stage_pods(struct __sk_buff *skb)
{
	return service_stage(skb, 1);
}

char LICENSE[] SEC("license") = "GPL";
