// SPDX-License-Identifier: Apache-2.0
/*
 * policy-l3l4's two pipeline stages, both fail-closed:
 *   policy_egress   MBR_STAGE_EGRESS_POLICY: what a local pod sends
 *   policy_ingress  MBR_STAGE_INGRESS_POLICY: what is for a local pod, from
 *                   a pod of this node, the overlay or another node
 * Each passes replies and ICMP errors of tracked connections (the entry
 * program's conntrack state), looks every other packet up in the policy map
 * (policy_maps.h), and lets a new connection it allows be tracked. Every
 * packet of an established connection is looked up again, so a revoked
 * allow stops the connection at its next packet.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h"
#include "membrane/contract.h"
#include "membrane/endpoints.h"
#include "membrane/pipeline.h"
#include "membrane/stats.h"

#include "policy_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_ENDPOINTS_MAX);
	__type(key, struct policy_endpoint_key);
	__type(value, struct policy_endpoint_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_l3l4_endpoints_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, POLICY_RULES_MAX);
	__type(key, struct policy_rule_key);
	__type(value, struct policy_rule_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_l3l4_rules_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, POLICY_CIDRS_MAX);
	__type(key, struct policy_cidr_key);
	__type(value, struct policy_cidr_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy_l3l4_cidrs_v1 SEC(".maps");

static __always_inline const struct policy_cidr_value *cidr_of(__be32 address)
{
	struct policy_cidr_key key = {.prefixlen = 32, .ip4 = address};
	return bpf_map_lookup_elem(&policy_l3l4_cidrs_v1, &key);
}

static __always_inline const struct policy_rule_value *rule_at(struct policy_rule_key *key, __u32 identity,
							       __u8 protocol, __u16 port)
{
	key->identity = identity;
	key->protocol = protocol;
	key->port = port;
	return bpf_map_lookup_elem(&policy_l3l4_rules_v1, key);
}

/* The deciding entry for this endpoint, direction and peer, most specific first (policy_maps.h). */
static __always_inline const struct policy_rule_value *decide(__u32 endpoint_id, __u8 direction, __u32 identity,
							      __u8 protocol, __u16 port)
{
	struct policy_rule_key key = {.endpoint_id = endpoint_id, .direction = direction};
	const struct policy_rule_value *found;
	if (identity != 0) {
		if (port != 0 && (found = rule_at(&key, identity, protocol, port)))
			return found;
		if ((found = rule_at(&key, identity, protocol, 0)))
			return found;
		if ((found = rule_at(&key, identity, 0, 0)))
			return found;
	}
	if (port != 0 && (found = rule_at(&key, 0, protocol, port)))
		return found;
	if ((found = rule_at(&key, 0, protocol, 0)))
		return found;
	return rule_at(&key, 0, 0, 0);
}

static __always_inline __u16 destination_port(const struct membrane_flow *flow)
{
	if (flow->key.protocol == IPPROTO_TCP || flow->key.protocol == IPPROTO_UDP || flow->key.protocol == IPPROTO_SCTP)
		return bpf_ntohs(flow->key.dport);
	return 0;
}

/* A denied packet: counted, and reported with the deciding rule (0: a default deny, or no rule at all). */
static __always_inline int drop(struct __sk_buff *skb, __u32 rule_id)
{
	return membrane_report_drop(skb, MBR_STAT_DROP_POLICY, rule_id);
}

/*
 * The verdict for the local endpoint `endpoint` on one direction: TC_ACT_OK
 * to go on, TC_ACT_SHOT counted as a policy drop. `create_ct`: this stage is
 * the last on this node to judge the packet, so it may track a new connection.
 */
static __always_inline int judge(struct __sk_buff *skb, const struct membrane_flow *flow,
				 const struct mbr_endpoint_value *endpoint, __u8 direction, __u32 remote_identity,
				 int create_ct)
{
	const __u32 ct_state = membrane_ctx_ct_state(skb);
	if (ct_state == MBR_CT_REPLY || ct_state == MBR_CT_RELATED)
		return TC_ACT_OK;
	/* The maps key endpoints by 32 bits: one past them cannot be told apart, so it gets nothing. */
	if (endpoint->endpoint_id > 0xffffffffull)
		return drop(skb, 0);
	const __u32 endpoint_id = (__u32)endpoint->endpoint_id;
	struct policy_endpoint_key ep_key = {.endpoint_id = endpoint_id};
	const struct policy_endpoint_value *enforced = bpf_map_lookup_elem(&policy_l3l4_endpoints_v1, &ep_key);
	const int enforcing = enforced && (direction == POLICY_INGRESS ? enforced->ingress_enforced : enforced->egress_enforced);
	if (enforcing) {
		/* An ICMP error about no connection this node tracks answers nothing: it is not a new connection either. */
		if (flow->icmp_error)
			return drop(skb, 0);
		/* Nobody knows who sent it (identity 0, e.g. VNI 0): it is the world, not "any identity". */
		if (remote_identity == MBR_IDENTITY_UNKNOWN)
			remote_identity = MBR_IDENTITY_WORLD;
		const __be32 remote_address = direction == POLICY_INGRESS ? flow->key.saddr : flow->key.daddr;
		const struct policy_cidr_value *cidr = NULL;
		/* An address of the world in a prefix a CIDR rule names has that prefix's identity. */
		if (remote_identity == MBR_IDENTITY_WORLD && (cidr = cidr_of(remote_address)))
			remote_identity = cidr->world_identity;
		const __u8 protocol = flow->key.protocol;
		const __u16 port = destination_port(flow);
		const struct policy_rule_value *rule = decide(endpoint_id, direction, remote_identity, protocol, port);
		/* Nothing about the sender itself: a rule may select its address (NetworkPolicy ipBlock). */
		if (!rule && remote_identity != MBR_IDENTITY_WORLD && remote_identity < POLICY_CIDR_IDENTITY_BASE &&
		    (cidr = cidr_of(remote_address)) && cidr->any_identity)
			rule = decide(endpoint_id, direction, cidr->any_identity, protocol, port);
		/*
		 * A revoked allow stops the connection here; its entry stays: were it
		 * forgotten, the other side's next packet would track the connection
		 * anew the other way round and make these packets its replies.
		 */
		if (!rule || rule->deny) {
			membrane_count_verdict(skb, direction == POLICY_INGRESS ? MBR_VERDICT_INGRESS_DENIED : MBR_VERDICT_EGRESS_DENIED);
			return drop(skb, rule ? rule->rule_id : 0);
		}
		/* An allowed new connection: the verdict and its rule, for the monitor (denials are drops). */
		if (ct_state == MBR_CT_NEW) {
			membrane_count_verdict(skb, direction == POLICY_INGRESS ? MBR_VERDICT_INGRESS_ALLOWED : MBR_VERDICT_EGRESS_ALLOWED);
			membrane_report(skb, MBR_EVENT_VERDICT, 0, rule->rule_id, 1);
		}
	}
	if (create_ct && ct_state == MBR_CT_NEW)
		membrane_ct_track(skb, flow);
	return TC_ACT_OK;
}

SEC("tc")
int policy_egress(struct __sk_buff *skb)
{
	if (membrane_ctx_direction(skb) != MBR_DIR_FROM_ENDPOINT || skb->protocol != bpf_htons(ETH_P_IP))
		return membrane_next_stage(skb, MBR_STAGE_EGRESS_POLICY);
	struct membrane_flow flow;
	if (membrane_flow_of(skb, &flow) != 0)
		return membrane_next_stage(skb, MBR_STAGE_EGRESS_POLICY); /* not IPv4: the entry program decided */
	const struct mbr_endpoint_value *source = membrane_endpoint_lookup(flow.key.saddr);
	if (!source)
		return drop(skb, 0); /* the entry program checked the source: gone since, so judged by nobody */
	/* For a pod of this node the ingress stage judges next and tracks; else this is the last word here. */
	const int last_here = membrane_endpoint_lookup(flow.key.daddr) == NULL;
	if (judge(skb, &flow, source, POLICY_EGRESS, membrane_ctx_dst_identity(skb), last_here) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return membrane_next_stage(skb, MBR_STAGE_EGRESS_POLICY);
}

SEC("tc")
int policy_ingress(struct __sk_buff *skb)
{
	struct membrane_flow flow;
	if (skb->protocol != bpf_htons(ETH_P_IP) || membrane_flow_of(skb, &flow) != 0)
		return membrane_next_stage(skb, MBR_STAGE_INGRESS_POLICY);
	const struct mbr_endpoint_value *destination = membrane_endpoint_lookup(flow.key.daddr);
	if (!destination)
		return membrane_next_stage(skb, MBR_STAGE_INGRESS_POLICY); /* not for a pod of this node */
	if (judge(skb, &flow, destination, POLICY_INGRESS, membrane_ctx_src_identity(skb), 1) != TC_ACT_OK)
		return TC_ACT_SHOT;
	return membrane_next_stage(skb, MBR_STAGE_INGRESS_POLICY);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
