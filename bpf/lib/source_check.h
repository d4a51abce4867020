/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Anti-spoofing: a pod's packet is trusted only if its source address and
 * MAC belong to the endpoint behind the very interface it came in on. The
 * endpoints map entry of the source IPv4 must name that interface (the host
 * side of the pod's veth) and that MAC. Otherwise a pod could take another
 * pod's address and with it that pod's identity, which policy matches on
 * and the VXLAN VNI carries to other nodes.
 */
#ifndef MBR_LIB_SOURCE_CHECK_H
#define MBR_LIB_SOURCE_CHECK_H

#include <linux/bpf.h>
#include <linux/if_ether.h>

#include "membrane/endpoints.h"

#include "eth.h"

/*
 * The endpoint that owns (source_ip, source_mac) on the interface the packet
 * arrived on, or NULL if there is none: unknown address, an address of a
 * pod behind another interface, or a MAC that is not the pod's.
 */
static __always_inline const struct mbr_endpoint_value *
endpoint_owning_source(const struct __sk_buff *skb, __be32 source_ip, const __u8 *source_mac)
{
	const struct mbr_endpoint_value *endpoint = membrane_endpoint_lookup(source_ip);
	if (!endpoint || endpoint->ifindex != skb->ifindex || !mac_equal(endpoint->mac, source_mac))
		return NULL;
	return endpoint;
}

#endif /* MBR_LIB_SOURCE_CHECK_H */
