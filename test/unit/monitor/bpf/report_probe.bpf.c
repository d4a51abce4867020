// SPDX-License-Identifier: Apache-2.0
/* For the flow monitor's tests, run with BPF_PROG_TEST_RUN: drops every
 * packet as a policy would, with rule 7 (membrane/monitor.h). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/monitor.h"

SEC("tc")
int report_drop(struct __sk_buff *skb)
{
	return membrane_report_drop(skb, MBR_STAT_DROP_POLICY, 7);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
