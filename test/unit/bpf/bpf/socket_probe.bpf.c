// SPDX-License-Identifier: Apache-2.0
/* Socket programs for the registry's socket-hook tests: they let every call go. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int probe_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/getpeername4")
int probe_getpeername4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("tc")
int probe_tc(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
