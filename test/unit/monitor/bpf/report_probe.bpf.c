// SPDX-License-Identifier: Apache-2.0
/* For the flow monitor's tests, run with BPF_PROG_TEST_RUN (membrane/monitor.h):
 *   report_drop     drops every packet as a policy would, with rule 7
 *   report_forward  forwards every packet to a local pod, a trace point */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/monitor.h"

SEC("tc")
int report_drop(struct __sk_buff *skb)
{
	return membrane_report_drop(skb, MBR_STAT_DROP_POLICY, 7);
}

SEC("tc")
int report_forward(struct __sk_buff *skb)
{
	membrane_report_forward(skb, MBR_STAT_DELIVERED_LOCAL);
	return TC_ACT_REDIRECT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
