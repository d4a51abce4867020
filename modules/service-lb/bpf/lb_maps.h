/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service-lb's maps, shared by its BPF programs and its C++ half (lb_maps.hpp).
 * All are pinned by name and kept across the module's reload and unload, so a
 * reload or a dead agent never leaves a service without its backends.
 *
 * service_lb_services_v1  (address, port, protocol, slot) -> slot 0: the
 *                         service (backend count, its number, flags,
 *                         affinity timeout); slot i (1..count): backend id,
 *                         address and port. A lookup is one hash lookup for
 *                         the service and one for the chosen slot, whatever
 *                         the number of services.
 *                         The agent writes new slots first and the count
 *                         last, and shrinks the count before it deletes
 *                         slots, so a reader never meets an empty slot.
 *                         The entry at 0.0.0.0:0 is the agent's writer mark
 *                         (no frontend: nothing connects there).
 * service_lb_backends_v1  backend id -> address and port, and the number of
 *                         the service (port) it serves: ids are per service,
 *                         so an id remembered for affinity is checked to be
 *                         still that service's
 * service_lb_reverse_v1   LRU: (socket cookie, backend address, port) ->
 *                         the service address and port the socket asked
 *                         for, so getpeername() and recvmsg() show the
 *                         service, not the backend
 * service_lb_affinity_v1  LRU: (service number, client netns cookie) ->
 *                         backend id and when it was last used (ClientIP
 *                         session affinity; a node's pods are told apart by
 *                         their network namespace)
 * service_lb_nat_v1       LRU: a connection from outside the node, by the
 *                         tuple of its packets in each direction: a
 *                         client's (ORIGINAL) -> its backend and the
 *                         source it was given (SNAT to this node, when
 *                         the backend is on another node); a backend's
 *                         reply (REPLY) -> the service address it answers
 *                         as and the client it goes back to. Each entry
 *                         lives as a conntrack entry does (60 s until
 *                         answered, 6 h after, 10 s after FIN or RST,
 *                         60 s for UDP), refreshed by its packets; an
 *                         expired one counts as absent, and its SNAT port
 *                         is free again
 * service_lb_node_v1      array of 1: this node's address (SNAT) and the
 *                         SNAT port range, written by the agent
 * service_lb_packets_v2   per-CPU counters of the packet path
 *                         (enum service_lb_packet_counter)
 * service_lb_host_v1      array of 1: the network namespace cookie of the
 *                         node (the agent's), where 127.0.0.1 NodePorts answer
 * service_lb_source_ranges_v1  LPM trie: (frontend, client range) of each
 *                         load balancer frontend from outside with
 *                         loadBalancerSourceRanges (SERVICE_LB_F_SOURCE_RANGES)
 * service_lb_maglev_v1    hash of maps: the service number of an outside
 *                         backend set -> its Maglev table, an array made
 *                         anew at each change and swapped in whole: the
 *                         table size M (prime), the agent's stamp of what
 *                         it was built from, then M backend ids, two to an
 *                         element (struct service_lb_maglev_pair; maglev.hpp).
 *                         Built from the backends' addresses and ports
 *                         alone, so every node's table sends a flow to the
 *                         same backend
 * service_lb_udp_v1       LRU: (socket cookie, service address, port) ->
 *                         backend id: a UDP socket's datagrams to one
 *                         service go to one backend, as kube-proxy's
 *                         conntrack keeps a 5-tuple on one, and the sweep
 *                         (udp_sweep.bpf.c) tells whether a connected
 *                         socket's backend still serves its service
 */
#ifndef SERVICE_LB_MAPS_H
#define SERVICE_LB_MAPS_H

#include <linux/types.h>

/* The hash maps take memory per entry (BPF_F_NO_PREALLOC): room for 10,000
 * services of 10 backends on 10 ports each. The LRU maps are preallocated. */
#define SERVICE_LB_SERVICES_MAX 1048576
#define SERVICE_LB_BACKENDS_MAX 1048576
#define SERVICE_LB_REVERSE_MAX 65536
#define SERVICE_LB_AFFINITY_MAX 65536
#define SERVICE_LB_UDP_MAX 65536

/* Maglev tables: at most this many outside backend sets have one (64 KiB
 * each at the default M = 16381). An array map's element takes 8 bytes
 * however small its value, so a table's elements are pairs of __u32: pair 0
 * is (M, stamp), and slot i of the table is pair 1 + i / 2, [i % 2]. As one
 * run of __u32 (what user space writes and reads): M at SIZE, the stamp at
 * STAMP, slot i at FIRST + i. */
#define SERVICE_LB_MAGLEV_MAX 65536
#define SERVICE_LB_MAGLEV_SIZE 0
#define SERVICE_LB_MAGLEV_STAMP 1
#define SERVICE_LB_MAGLEV_FIRST 2
#define SERVICE_LB_MAGLEV_PAIRS(m) (1 + ((m) + 1) / 2) /* elements of a table of m slots */

struct service_lb_maglev_pair {
	__u32 slot[2];
};

/* slot 0's flags */
#define SERVICE_LB_F_DROP_WHEN_EMPTY 0x1 /* Local traffic policy, backends elsewhere only: EHOSTUNREACH */
#define SERVICE_LB_F_SOURCE_RANGES 0x2   /* only clients in service_lb_source_ranges_v1 (packets) */
#define SERVICE_LB_F_HOST_NETNS 0x4      /* a NodePort on 127.0.0.1: the node's own network namespace only
					  * (service_lb_host_v1), not a pod's loopback */

/* Who a frontend serves: the same address and port may mean other backends
 * to this node's own clients and to traffic from outside (externalTrafficPolicy). */
#define SERVICE_LB_SCOPE_SOCKET 0  /* this node's clients, at connect() (socket programs) */
#define SERVICE_LB_SCOPE_OUTSIDE 1 /* packets that enter from outside the node (MBR_STAGE_SERVICE) */

struct service_lb_key {
	__be32 address;
	__be16 port;
	__u8 protocol; /* IPPROTO_TCP, IPPROTO_UDP */
	__u8 scope;    /* SERVICE_LB_SCOPE_* */
	__u32 slot; /* 0: the service; 1..count: its backends */
};

/* Slot 0 and the backend slots share the value's last 8 bytes: a slot
 * carries its backend's address and port, so a connect picks a backend in
 * two lookups (the service, a slot), not three. A slot written without them
 * (address 0, by an agent before they were added) is read through
 * service_lb_backends_v1. */
struct service_lb_value {
	__u32 backend_id; /* slot > 0 */
	__u16 count;      /* slot 0: backends in slots 1..count */
	__u16 flags;      /* slot 0: SERVICE_LB_F_* */
	union {
		struct {                        /* slot 0 */
			__u32 service_id;       /* the service port's number (affinity) */
			__u32 affinity_timeout; /* seconds; 0: none */
		};
		struct { /* slot > 0: backend_id's, as in service_lb_backends_v1 */
			__be32 backend_address;
			__be16 backend_port;
			__u16 slot_pad;
		};
	};
};

struct service_lb_backend {
	__be32 address;
	__be16 port;
	__u16 pad;
	__u32 service_id; /* the service (port) this id belongs to */
};

struct service_lb_reverse_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct service_lb_reverse_value {
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct service_lb_affinity_key {
	__u64 netns_cookie;
	__u32 service_id;
	__u32 pad;
};

struct service_lb_affinity_value {
	__u32 backend_id;
	__u32 last_used; /* seconds, bpf_ktime_get_boot_ns() / 1e9 */
};

struct service_lb_udp_key {
	__u64 cookie;
	__be32 address; /* the service's */
	__be16 port;
	__u16 pad;
};

#define SERVICE_LB_NAT_MAX 262144
#define SERVICE_LB_NAT_ORIGINAL 0
#define SERVICE_LB_NAT_REPLY 1

struct service_lb_nat_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 direction; /* SERVICE_LB_NAT_ORIGINAL, SERVICE_LB_NAT_REPLY */
	__u16 pad;
};

struct service_lb_nat_value {
	/* ORIGINAL: the backend (new destination); REPLY: the service (new source) */
	__be32 address;
	/* ORIGINAL: the source given to the client's packets (0: its own);
	 * REPLY: the client (new destination) */
	__be32 peer_address;
	__be16 port;
	__be16 peer_port;
	__u32 backend_id; /* ORIGINAL: checked to still serve the service */
	__u32 flags;      /* MBR_CT_F_SEEN_REPLY, MBR_CT_F_CLOSING (contract.h) */
	__u32 pad;
	__u64 expires_ns; /* bpf_ktime_get_ns(); past it the entry counts as absent (conntrack's timeouts) */
};

struct service_lb_node {
	__be32 address;   /* this node's, the source of SNATed packets; 0: not known yet */
	__u16 snat_low;   /* host byte order */
	__u16 snat_high;
};

enum service_lb_packet_counter {
	SERVICE_LB_PACKETS_TRANSLATED = 0, /* from outside, sent to a backend */
	SERVICE_LB_PACKETS_SNAT = 1,       /* of those, given this node's address (backend elsewhere) */
	SERVICE_LB_PACKETS_REPLIED = 2,    /* a backend's reply translated back and sent to its client */
	SERVICE_LB_PACKETS_NO_BACKEND = 3, /* dropped: no backend for traffic from outside */
	SERVICE_LB_PACKETS_NO_PORT = 4,    /* dropped: no free SNAT port */
	SERVICE_LB_PACKETS_NO_ROUTE = 5,   /* a reply with no route back to its client, left to the stack */
	SERVICE_LB_PACKETS_UNREACHABLE = 6, /* dropped: the backend is neither a pod here nor one of another node's */
	SERVICE_LB_PACKETS_SOURCE_RANGE = 7, /* dropped: the client is outside the loadBalancerSourceRanges */
	SERVICE_LB_PACKET_COUNTERS = 8,
};
/* The counters map has room for more: a newer module adds counters, not a map. */
#define SERVICE_LB_PACKET_COUNTERS_MAX 32

/* service_lb_source_ranges_v1 (LPM trie): a load balancer frontend's
 * loadBalancerSourceRanges, one entry per range, its frontend first so one
 * longest-prefix lookup of (frontend, client address) answers. */
struct service_lb_source_range_key {
	__u32 prefixlen; /* SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS + the range's length */
	__be32 address;  /* the frontend's */
	__be16 port;
	__u8 protocol;
	__u8 pad;
	__be32 source;   /* the range's network */
};
#define SERVICE_LB_SOURCE_RANGE_FRONTEND_BITS 64
#define SERVICE_LB_SOURCE_RANGES_MAX 65536

/* The sweep's record of one connected UDP socket whose backend no longer
 * serves the service it connected to (udp_sweep.bpf.c). */
struct service_lb_swept {
	__be32 service_address;
	__be32 backend_address;
	__be16 service_port;
	__be16 backend_port;
	__s32 result; /* bpf_sock_destroy(): 0, or a negative errno */
};

#endif
