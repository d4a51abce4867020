/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ipcache: longest-prefix match from an IPv4 address to its security
 * identity and the node that holds it (tunnel endpoint). Pinned by name so
 * the core and every module share one map; the kernel (model) writes it.
 */
#ifndef MEMBRANE_IPCACHE_H
#define MEMBRANE_IPCACHE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MBR_IPCACHE_MAX);
	__type(key, struct mbr_ipcache_key);
	__type(value, struct mbr_ipcache_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} mbr_ipcache_v1 SEC(".maps");

/* The most specific entry covering `ip4` (network byte order), or NULL. */
static __always_inline struct mbr_ipcache_value *membrane_ipcache_lookup(__be32 ip4)
{
	struct mbr_ipcache_key key = {.prefixlen = 32, .ip4 = ip4};
	return bpf_map_lookup_elem(&mbr_ipcache_v1, &key);
}

/* The identity of `ip4`; addresses no entry covers are WORLD. */
static __always_inline __u32 membrane_ipcache_identity(__be32 ip4)
{
	const struct mbr_ipcache_value *entry = membrane_ipcache_lookup(ip4);
	return entry ? entry->identity : MBR_IDENTITY_WORLD;
}

#endif /* MEMBRANE_IPCACHE_H */
