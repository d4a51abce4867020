/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local endpoints (pods) map, pinned by name so the core and every module
 * that includes this header share one map. The kernel (model) writes it;
 * BPF programs only read it. Layout: contract.h (mbr_endpoint_key/_value).
 */
#ifndef MEMBRANE_ENDPOINTS_H
#define MEMBRANE_ENDPOINTS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MBR_ENDPOINTS_MAX);
	__type(key, struct mbr_endpoint_key);
	__type(value, struct mbr_endpoint_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_endpoints_v1 SEC(".maps");

/* The local endpoint that owns `ip4` (network byte order), or NULL. */
static __always_inline struct mbr_endpoint_value *membrane_endpoint_lookup(__be32 ip4)
{
	struct mbr_endpoint_key key = {.ip4 = ip4};
	return bpf_map_lookup_elem(&mbr_endpoints_v1, &key);
}

#endif /* MEMBRANE_ENDPOINTS_H */
