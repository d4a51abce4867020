// SPDX-License-Identifier: Apache-2.0
/*
 * The sweep of connected UDP sockets. connect() of a UDP socket to a service
 * is translated once (service_lb.bpf.c), so when its backend is removed the
 * socket would go on sending to it: a DNS-like client never learns, which is
 * the socket-LB bug most reported against Cilium. After a sync that removed
 * backends the agent runs this iterator in each network namespace of the
 * node (a UDP iterator sees only the sockets of the namespace it was
 * created in); it destroys each IPv4 UDP socket that service-lb connected to
 * a backend that no longer serves that service, so the client's next call
 * fails with ECONNABORTED and it connects anew, to a live backend. It writes
 * one struct service_lb_swept per socket it destroyed (or failed to).
 *
 * A separate object because bpf_sock_destroy() needs Linux 6.5: on an older
 * kernel only this object fails to load, and socket LB goes on without it.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lb_map_defs.h"

#define AF_INET 2
#define TCP_ESTABLISHED 1 /* a connected UDP socket's state */

/* The kernel's types, as far as this reads them: CO-RE takes the offsets
 * from the running kernel's BTF. */
struct sock_common {
	unsigned short skc_family;
	volatile unsigned char skc_state;
	__be32 skc_daddr;
	__be16 skc_dport;
} __attribute__((preserve_access_index));

struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct udp_sock;
struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

/* Whether the backend id a socket was given for `service` still names
 * `address`:`port` among that service's backends. A frontend whose number
 * changed (its backends no longer equal those of the frontends it shared
 * the number with) gave its backends new ids: its sockets are swept too,
 * as its affinity lapses. */
static __always_inline int still_served(const struct service_lb_reverse_value *service, __u32 id, __be32 address,
					__be16 port)
{
	struct service_lb_key key = {.address = service->address, .port = service->port, .protocol = IPPROTO_UDP};
	struct service_lb_value *frontend = bpf_map_lookup_elem(&service_lb_services_v1, &key);
	struct service_lb_backend *backend;

	if (!frontend)
		return 0; /* the service is gone */
	backend = service_backend(frontend, id);
	return backend && backend->address == address && backend->port == port;
}

SEC("iter/udp")
int lb_sweep_udp(struct bpf_iter__udp *ctx)
{
	struct sock_common *sk = (struct sock_common *)ctx->udp_sk;
	struct service_lb_reverse_value *service;
	__u32 *id;

	if (!sk || sk->skc_family != AF_INET || sk->skc_state != TCP_ESTABLISHED)
		return 0;
	struct service_lb_reverse_key reverse_key = {
		.cookie = bpf_get_socket_cookie(sk),
		.address = sk->skc_daddr,
		.port = sk->skc_dport,
	};
	service = bpf_map_lookup_elem(&service_lb_reverse_v1, &reverse_key);
	if (!service)
		return 0; /* not connected through a service */
	struct service_lb_udp_key udp_key = {
		.cookie = reverse_key.cookie,
		.address = service->address,
		.port = service->port,
	};
	id = bpf_map_lookup_elem(&service_lb_udp_v1, &udp_key);
	if (!id)
		return 0; /* its backend was forgotten (LRU): nothing to tell it by */
	if (still_served(service, *id, reverse_key.address, reverse_key.port))
		return 0;
	struct service_lb_swept swept = {
		.service_address = service->address,
		.backend_address = reverse_key.address,
		.service_port = service->port,
		.backend_port = reverse_key.port,
	};
	swept.result = bpf_sock_destroy(sk);
	bpf_seq_write(ctx->meta->seq, &swept, sizeof(swept));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
