/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-packet context (struct membrane_ctx, contract.h) in skb->cb: what
 * the entry program found, read by every stage.
 */
#ifndef MEMBRANE_CTX_H
#define MEMBRANE_CTX_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "membrane/contract.h"

_Static_assert(sizeof(struct membrane_ctx) <= 5 * sizeof(__u32), "membrane_ctx must fit skb->cb");

static __always_inline void membrane_ctx_load(const struct __sk_buff *skb, struct membrane_ctx *ctx)
{
	__builtin_memcpy(ctx, (const void *)skb->cb, sizeof(*ctx));
}

static __always_inline void membrane_ctx_store(struct __sk_buff *skb, const struct membrane_ctx *ctx)
{
	__builtin_memcpy((void *)skb->cb, ctx, sizeof(*ctx));
}

static __always_inline __u32 membrane_ctx_direction(const struct __sk_buff *skb)
{
	return skb->cb[2] & 0xff;
}

/* What connection tracking knew of the packet (contract.h: enum membrane_ct_state; SDK 1.4). */
static __always_inline __u32 membrane_ctx_ct_state(const struct __sk_buff *skb)
{
	return (skb->cb[2] >> MBR_CTX_CT_SHIFT) & 0xff;
}

/* Security identities the entry program found (contract.h: MBR_IDENTITY_*). */
static __always_inline __u32 membrane_ctx_src_identity(const struct __sk_buff *skb)
{
	return skb->cb[0];
}

static __always_inline __u32 membrane_ctx_dst_identity(const struct __sk_buff *skb)
{
	return skb->cb[1];
}

static __always_inline int membrane_ctx_valid(const struct __sk_buff *skb)
{
	return skb->cb[4] == MBR_CTX_MAGIC;
}

#endif /* MEMBRANE_CTX_H */
