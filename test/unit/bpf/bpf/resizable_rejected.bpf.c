// SPDX-License-Identifier: Apache-2.0
/* The resize tests' hash map (resizable_maps.bpf.c) beside a program the
 * verifier refuses (a packet read without a bounds check): a load that sizes
 * the map opens, resizes and then fails, and must leave the old pin, and the
 * generation using it, as they were. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_resize_hash_v1 SEC(".maps");

SEC("tc")
int unchecked_read(struct __sk_buff *skb)
{
	__u32 key = *(__u8 *)(long)skb->data;
	__u64 *seen = bpf_map_lookup_elem(&mbr_test_resize_hash_v1, &key);

	if (seen)
		*seen += 1;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
