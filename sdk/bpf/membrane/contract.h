/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The datapath contract shared by the C++ control plane and every BPF program:
 * SDK version, pipeline stage numbers, the per-packet context layout and the
 * names of the maps the kernel pins. Plain C so both sides include the same
 * file; a change that breaks this layout is a new SDK major.
 */
#ifndef MEMBRANE_CONTRACT_H
#define MEMBRANE_CONTRACT_H

#include <linux/types.h>

#define MEMBRANE_SDK_MAJOR 1
#define MEMBRANE_SDK_MINOR 12

/*
 * Pipeline stages, run in increasing order. A stage hands over with
 * membrane_next_stage(); an empty slot gets its stage's empty-slot verdict
 * (below: skipped, or the packet dropped); past the last slot the packet gets
 * the default verdict (pass to the stack).
 */
enum membrane_stage {
	MBR_STAGE_OBSERVE = 0,        /* sees every packet first, must not change it */
	MBR_STAGE_SERVICE = 1,        /* service translation (service-lb) */
	MBR_STAGE_EGRESS_POLICY = 2,  /* policy of the sending endpoint */
	MBR_STAGE_L7_REDIRECT = 3,    /* hand-over to the L7 proxy */
	MBR_STAGE_ROUTING = 4,        /* overlay or direct routing */
	MBR_STAGE_INGRESS_POLICY = 5, /* policy of the receiving endpoint */
	MBR_STAGE_DELIVERY = 6,       /* local delivery */
	MBR_STAGE_CUSTOM_FIRST = 8,   /* 8..15: free for third-party modules */
	MBR_STAGE_MAX = 16,
};

/*
 * What the datapath does with a packet whose next stage's slot is empty:
 * mbr_stage_verdicts_v1, BPF_MAP_TYPE_ARRAY indexed by stage, value __u32.
 * Pinned like the pipeline, so the answer holds while the agent is down. A
 * module that fills a security stage declares it fail-closed (SDK
 * BpfRegistry::attach_stage with EmptySlot::drop), so that its unload,
 * quarantine or failed start drops instead of allowing everything.
 */
enum membrane_stage_verdict {
	MBR_STAGE_PASS_THROUGH = 0, /* skip the stage (the default) */
	MBR_STAGE_FAIL_CLOSED = 1,  /* drop, counted as MBR_STAT_DROP_STAGE_MISSING */
};

/* Where the entry program saw the packet (membrane_ctx.flags, bits 0-7). */
enum membrane_direction {
	MBR_DIR_FROM_NETDEV = 1,
	MBR_DIR_TO_NETDEV = 2,
	MBR_DIR_FROM_ENDPOINT = 3,
	MBR_DIR_TO_ENDPOINT = 4,
	MBR_DIR_FROM_OVERLAY = 5,
};

/*
 * What connection tracking knew of the packet when the entry program saw it
 * (membrane_ctx.flags, bits 8-15; SDK 1.4, conntrack.h). 0 before 1.4, and
 * for what is not IPv4: treat like MBR_CT_NEW.
 */
enum membrane_ct_state {
	MBR_CT_UNTRACKED = 0,   /* not looked up: not IPv4, or a later fragment */
	MBR_CT_NEW = 1,         /* no live entry: opens a connection */
	MBR_CT_ESTABLISHED = 2, /* an entry in this packet's direction */
	MBR_CT_REPLY = 3,       /* an entry in the other direction: an answer */
	MBR_CT_RELATED = 4,     /* an ICMP error about a tracked connection */
};
#define MBR_CTX_CT_SHIFT 8

/*
 * Per-packet context, carried in skb->cb[0..4] (20 bytes) from the entry
 * program through every stage. `magic` proves the entry program filled it.
 */
struct membrane_ctx {
	__u32 src_identity;
	__u32 dst_identity;
	__u32 flags;      /* bits 0-7: enum membrane_direction; 8-15: enum membrane_ct_state; MBR_CTX_F_* */
	__u16 proxy_port; /* host byte order; 0 = none */
	__u16 stage;      /* stage currently running */
	__u32 magic;
};
#define MBR_CTX_MAGIC 0x4d425231u /* "MBR1" */
/* SDK 1.6. A trace run, not a packet on the wire (membrane/trace.h): no side effects. */
#define MBR_CTX_F_TRACE (1u << 16)
/* SDK 1.8. The service stage translated the packet (a connection from
 * outside to a service): a routing stage carries it to the backend's node
 * as it carries a pod's packet, whatever device it came in on. */
#define MBR_CTX_F_SERVICE_NAT (1u << 17)

/*
 * Per-reason counters in the kernel's stats map (index = reason). Each value
 * has a stable name for people and scripts in membrane/stat_names.hpp.
 */
enum membrane_stat {
	MBR_STAT_ENTRY_FROM_NETDEV = 0,
	MBR_STAT_PIPELINE_DONE = 1, /* fell through every slot to the default verdict */
	MBR_STAT_ENTRY_FROM_ENDPOINT = 2,
	MBR_STAT_ENTRY_FROM_OVERLAY = 3,
	MBR_STAT_ARP_REPLIED = 4,     /* the pod's ARP for its gateway, answered */
	MBR_STAT_DELIVERED_LOCAL = 5, /* redirected to a local endpoint */
	MBR_STAT_TO_OVERLAY = 6,      /* encapsulated towards another node */
	MBR_STAT_FIB_FORWARDED = 7,   /* routed to another node (direct routing) */
	MBR_STAT_DROP_INVALID = 8,    /* malformed or unexpected packet dropped */
	MBR_STAT_DROP_SPOOFED = 9,    /* from a pod, with an address or MAC not that pod's */
	MBR_STAT_DROP_NOT_IPV4 = 10,  /* from a pod, neither IPv4 nor ARP (IPv6, VLAN...): unsupported */
	MBR_STAT_DROP_STAGE_MISSING = 11, /* a fail-closed stage's slot was empty */
	MBR_STAT_TTL_EXCEEDED = 12,   /* TTL ran out on this node: answered with ICMP time exceeded */
	MBR_STAT_OVERSIZE_TO_STACK = 13, /* over the overlay's MTU with DF set: the stack answers frag-needed */
	MBR_STAT_DROP_OVERSIZE = 14,  /* over the overlay's MTU without DF: dropped (Membrane does not fragment) */
	MBR_STAT_DROP_POLICY = 15,    /* denied by network policy (SDK 1.4) */
	MBR_STAT_MAX = 16,
};

/*
 * SDK 1.5. Events the datapath reports to the agent through the ring buffer
 * mbr_events_v1 (membrane/monitor.h): what `membranectl monitor` shows.
 */
enum membrane_event_type {
	MBR_EVENT_DROP = 0,    /* a packet dropped, with its reason (enum membrane_stat) */
	MBR_EVENT_VERDICT = 1, /* a policy verdict on a new connection, with the deciding rule */
	MBR_EVENT_TRACE = 2,   /* a stage's trace point (sampled out unless asked for) */
	MBR_EVENT_TYPES = 3,
};
/* The stage of an event reported by an entry program, before any stage ran. */
#define MBR_EVENT_STAGE_ENTRY MBR_STAGE_MAX

/* One event; addresses and ports in network order, as on the wire. */
struct mbr_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 src_identity;
	__u32 dst_identity;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 rule_id;  /* the deciding policy rule; 0: none (a default deny, or no policy event) */
	__u32 ifindex;  /* the device the packet came in on */
	__u16 reason;   /* MBR_EVENT_DROP: enum membrane_stat */
	__u8 type;      /* enum membrane_event_type */
	__u8 direction; /* enum membrane_direction; 0: unknown */
	__u8 stage;     /* the stage that reported, or MBR_EVENT_STAGE_ENTRY */
	__u8 protocol;  /* IPPROTO_*; 0 for what is not IPv4 */
	__u8 tcp_flags;
	__u8 verdict;   /* MBR_EVENT_VERDICT: 1 allowed, 0 denied */
	__u32 reserved;
};

/*
 * SDK 1.6. `membranectl policy trace` runs one packet through the loaded
 * programs with BPF_PROG_TEST_RUN: the entry program, then each filled stage
 * in turn (membrane/trace.h). A trace run changes nothing: what a stage
 * would count or report lands in the one record of mbr_trace_v1
 * (BPF_MAP_TYPE_ARRAY, pinned), which only trace runs write.
 *
 * The entry program takes a run as a trace only when skb->cb asks with the
 * agent's token, which no packet on the wire can know:
 *   cb[0], cb[1]  the token's low and high 32 bits (mbr_trace_record.token)
 *   cb[2], cb[3]  mbr_from_overlay: the VNI and outer source (host order)
 *                 the sending node would have put in the tunnel key, which
 *                 a test run cannot carry
 *   cb[4]         MBR_TRACE_REQUEST_MAGIC
 */
#define MBR_TRACE_REQUEST_MAGIC 0x4d425254u /* "MBRT" */
/* What a stage returns in a trace instead of the tail call: context.stage is the next stage to run. */
#define MBR_TRACE_HANDED_ON 0x4d42
struct mbr_trace_record {
	__u64 token;     /* written by the agent at its start; 0: no trace is possible */
	__u32 counted;   /* the last reason the program would have counted (enum membrane_stat) + 1; 0: none */
	__u32 reported;  /* events it would have reported; the last one is `event` */
	struct mbr_event event;
};

/*
 * SDK 1.6. Network-policy verdicts by direction, counted by the policy
 * stages (mbr_policy_verdicts_v1, BPF_MAP_TYPE_PERCPU_ARRAY, value __u64;
 * membrane_count_verdict() in membrane/stats.h): a new connection an
 * enforced policy allows, and every packet it denies (as drop_policy does).
 */
enum membrane_verdict_counter {
	MBR_VERDICT_INGRESS_ALLOWED = 0,
	MBR_VERDICT_INGRESS_DENIED = 1,
	MBR_VERDICT_EGRESS_ALLOWED = 2,
	MBR_VERDICT_EGRESS_DENIED = 3,
	MBR_VERDICT_COUNTERS = 4,
};

/*
 * SDK 1.6. How many events each CPU may report per second, whatever their
 * type (mbr_event_limit_v1, BPF_MAP_TYPE_ARRAY of one, written by the agent
 * from [monitor] rate_limit): under a flood of drops the datapath reports at
 * most that many and counts the rest as lost, so the agent's reading cannot
 * take the CPU the packets need. 0: no limit. Each CPU's bucket is in
 * mbr_event_budget_v1 (BPF_MAP_TYPE_PERCPU_ARRAY of one).
 */
struct mbr_event_limit {
	__u32 events_per_second;
	__u32 burst; /* events a CPU may report at once after a quiet spell */
};
struct mbr_event_budget {
	__u64 refilled_ns; /* bpf_ktime_get_ns() of the last refill */
	__u64 tokens;      /* events this CPU may still report */
};

/*
 * Security identities: a label set maps to a number. These are reserved;
 * label sets get numbers from MBR_IDENTITY_FIRST_ALLOCATED on.
 */
enum membrane_identity {
	MBR_IDENTITY_UNKNOWN = 0,
	MBR_IDENTITY_HOST = 1,        /* this node's own stack */
	MBR_IDENTITY_WORLD = 2,       /* anything outside the cluster */
	MBR_IDENTITY_UNMANAGED = 3,   /* a pod address Membrane does not manage */
	MBR_IDENTITY_REMOTE_NODE = 4, /* another node's own stack */
	MBR_IDENTITY_FIRST_ALLOCATED = 256,
};

/*
 * Entry programs of the core object (bpf/core.bpf.c), attached on tc ingress:
 *   mbr_from_netdev    the node's devices (agent.devices)
 *   mbr_from_endpoint  the host side of each pod's veth
 *   mbr_from_overlay   the overlay device (owned by a routing module)
 */
#define MBR_ENTRY_FROM_NETDEV "mbr_from_netdev"
#define MBR_ENTRY_FROM_ENDPOINT "mbr_from_endpoint"
#define MBR_ENTRY_FROM_OVERLAY "mbr_from_overlay"

/* Local endpoints (pods) by IPv4 address: mbr_endpoints_v1, BPF_MAP_TYPE_HASH. */
struct mbr_endpoint_key {
	__be32 ip4;
};
struct mbr_endpoint_value {
	__u64 endpoint_id;
	__u32 ifindex;     /* host side of the pod's veth */
	__u32 identity;    /* security identity of the pod's labels */
	__u8 mac[6];       /* pod side MAC */
	__u8 host_mac[6];  /* host side MAC: the pod's gateway */
	__u32 flags;
};
#define MBR_ENDPOINTS_MAX 65536

/*
 * What every known prefix is and where it lives: mbr_ipcache_v1,
 * BPF_MAP_TYPE_LPM_TRIE (BPF_F_NO_PREALLOC). Local pods (/32, tunnel 0),
 * other nodes' pod CIDRs (tunnel = that node's IP), other nodes' IPs (/32,
 * REMOTE_NODE, tunnel = that node's IP), this node's IP (/32, HOST).
 */
struct mbr_ipcache_key {
	__u32 prefixlen; /* LPM: bits of ip4 that count */
	__be32 ip4;
};
struct mbr_ipcache_value {
	__u32 identity;
	__be32 tunnel_endpoint; /* IPv4 of the node that holds it; 0: this node or outside */
	__u32 flags;
	__u32 reserved;
};
#define MBR_IPCACHE_MAX 65536

/*
 * Connection tracking (SDK 1.4, conntrack.h): mbr_ct_v1, BPF_MAP_TYPE_LRU_HASH
 * keyed by the tuple of a connection's first packet. ICMP echo carries its
 * identifier in both ports. Times are CLOCK_MONOTONIC_COARSE
 * (bpf_ktime_get_coarse_ns(); before SDK 1.11, bpf_ktime_get_ns()).
 */
struct mbr_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 pad[3];
};
struct mbr_ct_value {
	__u64 expires_ns; /* the entry is dead from then on */
	__u32 flags;      /* MBR_CT_F_* */
	__u32 reserved;
};
#define MBR_CT_F_SEEN_REPLY 0x1 /* the other side answered */
#define MBR_CT_F_CLOSING 0x2    /* TCP FIN or RST seen */
#define MBR_CT_MAX 131072
/* Lifetimes past the last packet, in seconds (docs/conntrack.md). */
#define MBR_CT_TIMEOUT_TCP_SYN_S 60           /* TCP until the other side answers */
#define MBR_CT_TIMEOUT_TCP_ESTABLISHED_S 21600 /* TCP answered: 6 hours, as Cilium */
#define MBR_CT_TIMEOUT_TCP_CLOSING_S 10       /* TCP after FIN or RST */
#define MBR_CT_TIMEOUT_OTHER_S 60             /* UDP, SCTP, ICMP and the rest */

/*
 * The overlay on this node (SDK 1.10, overlay.h): mbr_overlay_v1, an array of
 * one, written by the module that owns the overlay (routing-vxlan).
 */
struct mbr_overlay_config {
	__be16 vxlan_port; /* UDP destination port of the overlay; 0: none here */
	__u16 writer;      /* which module generation wrote it: only that one clears it */
};

/* Names under <bpffs>/membrane/<node>/; the version suffix guards reuse. */
#define MBR_MAP_PIPELINE "mbr_pipe_v1"
#define MBR_MAP_STATS "mbr_stats_v1"
#define MBR_MAP_ENDPOINTS "mbr_endpoints_v1"
#define MBR_MAP_IPCACHE "mbr_ipcache_v1"
#define MBR_MAP_STAGE_VERDICTS "mbr_stage_verdicts_v1"
#define MBR_MAP_CT "mbr_ct_v1"
#define MBR_MAP_EVENTS "mbr_events_v1"                 /* SDK 1.5: membrane/monitor.h */
#define MBR_MAP_EVENT_SAMPLING "mbr_event_sampling_v1"
#define MBR_MAP_EVENTS_LOST "mbr_events_lost_v1"
#define MBR_MAP_TRACE "mbr_trace_v1"                   /* SDK 1.6: membrane/trace.h */
#define MBR_MAP_EVENT_LIMIT "mbr_event_limit_v1"       /* SDK 1.6: membrane/monitor.h */
#define MBR_MAP_EVENT_BUDGET "mbr_event_budget_v1"
#define MBR_MAP_POLICY_VERDICTS "mbr_policy_verdicts_v1"  /* SDK 1.6: membrane/stats.h */
#define MBR_MAP_OVERLAY "mbr_overlay_v1"               /* SDK 1.10: membrane/overlay.h */

#endif /* MEMBRANE_CONTRACT_H */
