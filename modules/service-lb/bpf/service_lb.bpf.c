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
 * fails at once rather than waiting; one whose Local traffic policy leaves
 * it no backend here is left untranslated (a drop, not a refusal).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lb_maps.h"

#define ECONNREFUSED 111
#define NSEC_PER_SEC 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SERVICE_LB_SERVICES_MAX);
	__type(key, struct service_lb_key);
	__type(value, struct service_lb_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_services_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SERVICE_LB_BACKENDS_MAX);
	__type(key, __u32);
	__type(value, struct service_lb_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_backends_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SERVICE_LB_REVERSE_MAX);
	__type(key, struct service_lb_reverse_key);
	__type(value, struct service_lb_reverse_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_reverse_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SERVICE_LB_AFFINITY_MAX);
	__type(key, struct service_lb_affinity_key);
	__type(value, struct service_lb_affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_affinity_v1 SEC(".maps");

/* The backend a session-affinity entry names, if it is still the service's
 * and has not timed out. A backend removed from the service has lost its id
 * (ids are per service port and backend), so the lookup fails. */
static __always_inline __u32 affine_backend(const struct service_lb_affinity_key *key, __u32 timeout, __u32 now)
{
	struct service_lb_affinity_value *affine = bpf_map_lookup_elem(&service_lb_affinity_v1, key);

	if (!affine || now - affine->last_used > timeout)
		return 0;
	return bpf_map_lookup_elem(&service_lb_backends_v1, &affine->backend_id) ? affine->backend_id : 0;
}

/* Rewrites the destination of a call to a service: 1 to let the call go
 * on (translated or not a service), 0 to refuse it. */
static __always_inline int translate(struct bpf_sock_addr *ctx)
{
	const __u8 protocol = ctx->protocol;
	struct service_lb_key key = {
		.address = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.protocol = protocol,
	};
	struct service_lb_affinity_key affinity_key = {};
	struct service_lb_backend *backend;
	struct service_lb_value *service;
	struct service_lb_value *slot;
	__u32 backend_id = 0;
	__u32 now = 0;

	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return 1;
	service = bpf_map_lookup_elem(&service_lb_services_v1, &key);
	if (!service)
		return 1;
	if (service->count == 0) {
		if (service->flags & SERVICE_LB_F_DROP_WHEN_EMPTY)
			return 1;
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	}
	if (service->affinity_timeout) {
		affinity_key.netns_cookie = bpf_get_netns_cookie(ctx);
		affinity_key.service_id = service->service_id;
		now = bpf_ktime_get_boot_ns() / NSEC_PER_SEC;
		backend_id = affine_backend(&affinity_key, service->affinity_timeout, now);
	}
	if (!backend_id) {
		key.slot = bpf_get_prandom_u32() % service->count + 1;
		slot = bpf_map_lookup_elem(&service_lb_services_v1, &key);
		if (!slot)
			return 1; /* the agent is rewriting it: cannot happen in write order */
		backend_id = slot->backend_id;
	}
	backend = bpf_map_lookup_elem(&service_lb_backends_v1, &backend_id);
	if (!backend)
		return 1;
	if (service->affinity_timeout) {
		struct service_lb_affinity_value affine = {.backend_id = backend_id, .last_used = now};

		bpf_map_update_elem(&service_lb_affinity_v1, &affinity_key, &affine, BPF_ANY);
	}

	struct service_lb_reverse_key reverse_key = {
		.cookie = bpf_get_socket_cookie(ctx),
		.address = backend->address,
		.port = backend->port,
	};
	struct service_lb_reverse_value reverse = {.address = ctx->user_ip4, .port = (__be16)ctx->user_port};

	bpf_map_update_elem(&service_lb_reverse_v1, &reverse_key, &reverse, BPF_ANY);
	ctx->user_ip4 = backend->address;
	ctx->user_port = backend->port;
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
