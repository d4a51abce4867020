// SPDX-License-Identifier: Apache-2.0
/* A stage for the conntrack tests (slot MBR_STAGE_OBSERVE): counts the
 * conntrack state the entry program put in the context of each ICMP packet
 * (by state), and tracks what is new, as a policy stage that allows would;
 * then hands the packet on. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "membrane/conntrack.h"
#include "membrane/contract.h"
#include "membrane/pipeline.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8); /* by enum membrane_ct_state */
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_ct_states_v1 SEC(".maps");

SEC("tc")
int record_ct_states(struct __sk_buff *skb)
{
	struct membrane_flow flow;
	if (skb->protocol == bpf_htons(ETH_P_IP) && membrane_flow_of(skb, &flow) == 0 &&
	    flow.key.protocol == IPPROTO_ICMP) {
		__u32 state = membrane_ctx_ct_state(skb);
		__u64 *count = bpf_map_lookup_elem(&mbr_test_ct_states_v1, &state);
		if (count)
			__sync_fetch_and_add(count, 1);
		if (state == MBR_CT_NEW)
			membrane_ct_create(&flow);
	}
	return membrane_next_stage(skb, MBR_STAGE_OBSERVE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
