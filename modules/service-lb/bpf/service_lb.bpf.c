// SPDX-License-Identifier: Apache-2.0
/*
 * service-lb's socket-level load balancing: a connection to a service is
 * translated once, in connect(), to one of its backends, so none of its
 * packets needs NAT. On the agent's cgroup root ([agent] cgroup_root):
 *   lb_connect4      connect() of TCP and UDP sockets
 *   lb_sendmsg4      sendmsg()/sendto() of unconnected UDP sockets
 *   lb_recvmsg4      recvmsg() of UDP: the reply's source is the service again
 *   lb_getpeername4  getpeername(): the peer is the service, not the backend
 * A service without backends refuses the call with ECONNREFUSED, as
 * kube-proxy's REJECT does (TCP RST, ICMP port unreachable), so a client
 * fails at once rather than waiting. One whose Local traffic policy leaves
 * it no backend on this node while others have some is refused with
 * EHOSTUNREACH: kube-proxy drops there, which a socket call cannot do, and
 * nothing untranslated may leave for a service address.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lb_map_defs.h"

#define ECONNREFUSED 111
#define EHOSTUNREACH 113

/* Refuses the socket call with `error` (a negative errno). */
static __always_inline int refuse(int error)
{
	bpf_set_retval(error);
	return 0;
}

/* Whether the socket lives in the node's own network namespace (the agent's). */
static __always_inline int in_host_netns(struct bpf_sock_addr *ctx)
{
	const __u32 zero = 0;
	const __u64 *host = bpf_map_lookup_elem(&service_lb_host_v1, &zero);

	return host && *host && *host == bpf_get_netns_cookie(ctx);
}

/* Rewrites the destination of a call to a service: 1 to let the call go
 * on (translated, or not a service), 0 to refuse it. A UDP socket stays on
 * the backend it had for the service: its unconnected datagrams go to one
 * backend, and the agent finds a connected one whose backend was removed
 * (udp_sweep.bpf.c). */
static __always_inline int translate(struct bpf_sock_addr *ctx)
{
	const __u8 protocol = ctx->protocol;
	struct service_lb_key key = {
		.address = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.protocol = protocol,
	};
	struct service_lb_udp_key udp_key = {};
	struct service_lb_backend backend;
	struct service_lb_value *service;
	__u32 backend_id = 0;
	__u32 *remembered = 0;

	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return 1;
	service = bpf_map_lookup_elem(&service_lb_services_v1, &key);
	if (!service)
		return 1;
	/* 127.0.0.1 is a pod's own loopback, not the node's NodePort. */
	if ((service->flags & SERVICE_LB_F_HOST_NETNS) && !in_host_netns(ctx))
		return 1;
	if (service->count == 0)
		/* A socket cannot be dropped silently: a Local traffic policy's
		 * "no backend here" is told apart from "no backend at all". */
		return refuse(service->flags & SERVICE_LB_F_DROP_WHEN_EMPTY ? -EHOSTUNREACH : -ECONNREFUSED);
	if (protocol == IPPROTO_UDP) {
		udp_key.cookie = bpf_get_socket_cookie(ctx);
		udp_key.address = key.address;
		udp_key.port = key.port;
		remembered = bpf_map_lookup_elem(&service_lb_udp_v1, &udp_key);
		if (remembered)
			backend_id = *remembered;
	}
	/* The namespace cookie only when affinity needs it: a helper call saved on every other connect. */
	if (!choose_backend(&key, service, service->affinity_timeout ? bpf_get_netns_cookie(ctx) : 0, 0, &backend,
			    &backend_id))
		return refuse(-ECONNREFUSED); /* the service is being removed */
	if (protocol == IPPROTO_UDP && (!remembered || *remembered != backend_id))
		bpf_map_update_elem(&service_lb_udp_v1, &udp_key, &backend_id, BPF_ANY);

	struct service_lb_reverse_key reverse_key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = backend.address,
		.port = backend.port,
	};
	struct service_lb_reverse_value reverse = {.address = ctx->user_ip4, .port = (__be16)ctx->user_port};

	bpf_map_update_elem(&service_lb_reverse_v1, &reverse_key, &reverse, BPF_ANY);
	ctx->user_ip4 = backend.address;
	ctx->user_port = backend.port;
	return 1;
}

/* The service address a socket asked for, in place of its backend's. */
static __always_inline void untranslate(struct bpf_sock_addr *ctx)
{
	struct service_lb_reverse_key key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	struct service_lb_reverse_value *service = bpf_map_lookup_elem(&service_lb_reverse_v1, &key);

	if (!service)
		return;
	ctx->user_ip4 = service->address;
	ctx->user_port = service->port;
}

SEC("cgroup/connect4")
int lb_connect4(struct bpf_sock_addr *ctx)
{
	return translate(ctx);
}

SEC("cgroup/sendmsg4")
int lb_sendmsg4(struct bpf_sock_addr *ctx)
{
	return translate(ctx);
}

SEC("cgroup/recvmsg4")
int lb_recvmsg4(struct bpf_sock_addr *ctx)
{
	untranslate(ctx);
	return 1;
}

SEC("cgroup/getpeername4")
int lb_getpeername4(struct bpf_sock_addr *ctx)
{
	untranslate(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
