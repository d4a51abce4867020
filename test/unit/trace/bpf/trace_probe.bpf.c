// SPDX-License-Identifier: Apache-2.0
/*
 * Stages for the datapath tracer's tests, run as a trace would run them:
 *   probe_allow  reports a verdict (rule 9), counts drop_invalid (a
 *                counter nothing else moves), tracks its connection and
 *                hands on: every side effect a stage can have
 *   probe_drop   drops as a policy would, with rule 7
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"
#include "membrane/conntrack.h"
#include "membrane/monitor.h"
#include "membrane/pipeline.h"

SEC("tc")
int probe_allow(struct __sk_buff *skb)
{
	membrane_report(skb, MBR_EVENT_VERDICT, 0, 9, 1);
	membrane_count(skb, MBR_STAT_DROP_INVALID);
	struct membrane_flow flow;
	if (membrane_flow_of(skb, &flow) == 0)
		membrane_ct_track(skb, &flow);
	return membrane_next_stage(skb, MBR_STAGE_EGRESS_POLICY);
}

SEC("tc")
int probe_drop(struct __sk_buff *skb)
{
	return membrane_report_drop(skb, MBR_STAT_DROP_POLICY, 7);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
