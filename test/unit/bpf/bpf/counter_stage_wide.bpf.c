// SPDX-License-Identifier: Apache-2.0
/* Declares the same pinned map name as counter_stage.bpf.c with a wider value:
 * loading it next to a pin made by counter_stage must be refused. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"

struct wide_count {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wide_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_count_v1 SEC(".maps");

SEC("tc")
int count_packets(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct wide_count *count = bpf_map_lookup_elem(&mbr_test_count_v1, &zero);
	if (count) {
		__sync_fetch_and_add(&count->packets, 1);
		__sync_fetch_and_add(&count->bytes, skb->len);
	}
	return membrane_next_stage(skb, MBR_STAGE_CUSTOM_FIRST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
