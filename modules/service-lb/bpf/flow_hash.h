/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hash of a connection from outside that picks its slot of a Maglev
 * table (lb_map_defs.h: maglev_backend). Every node must compute the same
 * one for the same connection, whichever node it enters: so it covers what
 * the connection has in common on every node (the client's address and
 * port, the protocol, the port it asked for: a NodePort is the same on
 * each node), not the address it was sent to (each node's own, for a
 * NodePort), and the values in host byte order with a fixed seed.
 * The mixing is Bob Jenkins' lookup3 (public domain), as the kernel's jhash.
 */
#ifndef SERVICE_LB_FLOW_HASH_H
#define SERVICE_LB_FLOW_HASH_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

/* Changing it moves every flow of a cluster whose nodes run both versions. */
#define SERVICE_LB_FLOW_HASH_SEED 0x6d626c62 /* "mblb" */

static __always_inline __u32 lookup3_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> (32 - shift));
}

/* lookup3's hashword() of three words. */
static __always_inline __u32 lookup3_3words(__u32 a, __u32 b, __u32 c, __u32 seed)
{
	const __u32 init = 0xdeadbeef + (3 << 2) + seed;

	a += init;
	b += init;
	c += init;
	c ^= b;
	c -= lookup3_rol32(b, 14);
	a ^= c;
	a -= lookup3_rol32(c, 11);
	b ^= a;
	b -= lookup3_rol32(a, 25);
	c ^= b;
	c -= lookup3_rol32(b, 16);
	a ^= c;
	a -= lookup3_rol32(c, 4);
	b ^= a;
	b -= lookup3_rol32(a, 14);
	c ^= b;
	c -= lookup3_rol32(b, 24);
	return c;
}

/* A connection from `client`:`client_port` (network byte order) to a frontend's `port` over `protocol`. */
static __always_inline __u32 service_lb_flow_hash(__be32 client, __be16 client_port, __be16 port, __u8 protocol)
{
	return lookup3_3words(bpf_ntohl(client), (__u32)bpf_ntohs(client_port) << 16 | bpf_ntohs(port), protocol,
			      SERVICE_LB_FLOW_HASH_SEED);
}

#endif
