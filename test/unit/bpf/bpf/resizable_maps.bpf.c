// SPDX-License-Identifier: Apache-2.0
/* Pinned maps for the resize tests (map_resize_test.cpp): one of each kind
 * the registry copies into a map of another size (an LPM trie, which has no
 * batch ops, copied key by key), and a prog array, which it refuses to resize. No programs: the tests fill the maps from user space. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define PINNED __uint(pinning, LIBBPF_PIN_BY_NAME)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
	PINNED;
} mbr_test_resize_hash_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32); /* 4 bytes: each CPU's value takes 8 in user space */
	PINNED;
} mbr_test_resize_percpu_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
	PINNED;
} mbr_test_resize_lru_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	PINNED;
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 4);
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(__u32));
		__uint(map_flags, BPF_F_INNER_MAP);
	});
} mbr_test_resize_outer_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
	PINNED;
} mbr_test_resize_progs_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
	PINNED;
} mbr_test_resize_array_v1 SEC(".maps");

struct mbr_test_resize_prefix {
	__u32 prefixlen;
	__u32 address;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__type(key, struct mbr_test_resize_prefix);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	PINNED;
} mbr_test_resize_lpm_v1 SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";
