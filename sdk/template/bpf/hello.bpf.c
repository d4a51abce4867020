// SPDX-License-Identifier: Apache-2.0
/*
 * hello's pipeline stage: counts packets per direction, then hands the packet
 * to the next filled slot. A stage sees only the SDK's context layout
 * (skb->cb) and the shared pipeline; it must end with membrane_next_stage()
 * unless it means to decide the packet's fate itself.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"

/* A custom-range slot (MBR_STAGE_CUSTOM_FIRST..MBR_STAGE_MAX-1). */
#define HELLO_STAGE MBR_STAGE_CUSTOM_FIRST

/*
 * Pinned by name under the node's pin folder, so the next generation of the
 * module re-adopts it on reload. Put a version in the name: the agent reuses
 * a pinned map only if its shape matches, and a new shape is a new name.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8); /* index: enum membrane_direction */
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} hello_pkts_v1 SEC(".maps");

SEC("tc")
int hello_stage(struct __sk_buff *skb)
{
	if (membrane_ctx_valid(skb)) {
		__u32 direction = membrane_ctx_direction(skb);
		__u64 *count = bpf_map_lookup_elem(&hello_pkts_v1, &direction);

		if (count)
			*count += 1;
	}
	return membrane_next_stage(skb, HELLO_STAGE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
