/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy-l3l4's maps, shared by its BPF stages and its C++ half. Both are
 * pinned by name and kept across the module's reload and unload, so a
 * restarting agent or module never leaves a selected endpoint unenforced.
 *
 * policy_l3l4_endpoints_v1  local endpoint id -> which directions are
 *                           enforced (absent: neither, everything passes)
 * policy_l3l4_rules_v1      (endpoint, direction, remote identity, protocol,
 *                           port) -> allow or deny, and the rule it came from
 * policy_l3l4_cidrs_v1      LPM: every prefix a CIDR rule names (and its
 *                           excepts) -> two local CIDR identities (below)
 *
 * The stage looks a packet up in a fixed order, most specific first, and the
 * first entry found decides; nothing found is a deny. 0 is the wildcard of
 * each of identity, protocol and port (a port only with its protocol):
 *   (id, proto, port) (id, proto, *) (id, *, *) (*, proto, port) (*, proto, *) (*, *, *)
 * so a lookup is six hash lookups at most, whatever the number of rules. The
 * agent makes "deny wins" true in that order: where a deny and an allow
 * overlap, their intersection is written as a deny.
 *
 * CIDR rules become identities, so they cost lookups like any other rule.
 * Each prefix P of the CIDR map has two numbers from POLICY_CIDR_IDENTITY_BASE
 * (above every cluster identity): `world` stands for an address of the world
 * in P (the packet's identity is MBR_IDENTITY_WORLD): the agent gives it
 * every rule about the world and every CIDR rule that covers P; `any` stands
 * for any address in P, a pod's too, and carries only the rules that select
 * cluster addresses by CIDR (NetworkPolicy ipBlock), consulted when the
 * remote identity itself decided nothing.
 */
#ifndef POLICY_L3L4_MAPS_H
#define POLICY_L3L4_MAPS_H

#include <linux/types.h>

#define POLICY_INGRESS 0
#define POLICY_EGRESS 1

struct policy_endpoint_key {
	__u32 endpoint_id;
};
struct policy_endpoint_value {
	__u8 ingress_enforced;
	__u8 egress_enforced;
	__u16 pad;
	__u32 reserved;
};

struct policy_rule_key {
	__u32 endpoint_id;
	__u32 identity; /* the remote side's; 0: any */
	__u16 port;     /* host byte order; 0: any */
	__u8 protocol;  /* IPPROTO_*; 0: any */
	__u8 direction; /* POLICY_INGRESS, POLICY_EGRESS */
};
struct policy_rule_value {
	__u8 deny;
	__u8 pad[3];
	__u32 rule_id; /* the module's number for the policy rule: Status names it */
};

struct policy_cidr_key {
	__u32 prefixlen; /* LPM: bits of ip4 that count */
	__be32 ip4;
};
struct policy_cidr_value {
	__u32 world_identity;
	__u32 any_identity; /* 0: no rule selects cluster addresses in this prefix */
};
#define POLICY_CIDR_IDENTITY_BASE 0x01000000u

#define POLICY_ENDPOINTS_MAX 65536
#define POLICY_CIDRS_MAX 16384
#define POLICY_RULES_MAX 1048576

#define POLICY_MAP_ENDPOINTS "policy_l3l4_endpoints_v1"
#define POLICY_MAP_RULES "policy_l3l4_rules_v1"
#define POLICY_MAP_CIDRS "policy_l3l4_cidrs_v1"

#endif /* POLICY_L3L4_MAPS_H */
