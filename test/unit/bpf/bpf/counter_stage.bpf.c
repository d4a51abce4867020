// SPDX-License-Identifier: Apache-2.0
/* A pipeline stage for the registry tests: counts every packet into a pinned
 * map, then hands the packet on. Also pins a scratch map that the tests never
 * declare persistent. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/pipeline.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_count_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_scratch_v1 SEC(".maps");

SEC("tc")
int count_packets(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&mbr_test_count_v1, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	return membrane_next_stage(skb, MBR_STAGE_CUSTOM_FIRST);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
