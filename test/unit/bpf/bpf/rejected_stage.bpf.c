// SPDX-License-Identifier: Apache-2.0
/* A stage the verifier refuses (packet read without a bounds check): its
 * load must fail with the verifier's words and leave no pin behind. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_test_rejected_v1 SEC(".maps");

SEC("tc")
int unchecked_read(struct __sk_buff *skb)
{
	__u32 zero = 0;
	__u64 *seen = bpf_map_lookup_elem(&mbr_test_rejected_v1, &zero);
	if (seen)
		*seen = *(__u8 *)(long)skb->data;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
