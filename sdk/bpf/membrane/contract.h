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
#define MEMBRANE_SDK_MINOR 0

/*
 * Pipeline stages, run in increasing order. A stage hands over with
 * membrane_next_stage(); an empty slot is skipped; past the last slot the
 * packet gets the default verdict (pass to the stack).
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

/* Where the entry program saw the packet (membrane_ctx.flags, low byte). */
enum membrane_direction {
	MBR_DIR_FROM_NETDEV = 1,
	MBR_DIR_TO_NETDEV = 2,
	MBR_DIR_FROM_ENDPOINT = 3,
	MBR_DIR_TO_ENDPOINT = 4,
	MBR_DIR_FROM_OVERLAY = 5,
};

/*
 * Per-packet context, carried in skb->cb[0..4] (20 bytes) from the entry
 * program through every stage. `magic` proves the entry program filled it.
 */
struct membrane_ctx {
	__u32 src_identity;
	__u32 dst_identity;
	__u32 flags;      /* low byte: enum membrane_direction */
	__u16 proxy_port; /* host byte order; 0 = none */
	__u16 stage;      /* stage currently running */
	__u32 magic;
};
#define MBR_CTX_MAGIC 0x4d425231u /* "MBR1" */

/* Per-reason counters in the kernel's stats map (index = reason). */
enum membrane_stat {
	MBR_STAT_ENTRY_FROM_NETDEV = 0,
	MBR_STAT_PIPELINE_DONE = 1, /* fell through every slot to the default verdict */
	MBR_STAT_MAX = 16,
};

/* Names under <bpffs>/membrane/<node>/; the version suffix guards reuse. */
#define MBR_MAP_PIPELINE "mbr_pipe_v1"
#define MBR_MAP_STATS "mbr_stats_v1"

#endif /* MEMBRANE_CONTRACT_H */
