/* SPDX-License-Identifier: Apache-2.0 */
/*
 * service-lb's maps as its BPF objects declare them (layouts: lb_maps.h).
 * Pinned by name, so every object of the module that includes this meets
 * the same maps.
 */
#ifndef SERVICE_LB_MAP_DEFS_H
#define SERVICE_LB_MAP_DEFS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_maps.h"

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
	__uint(max_entries, SERVICE_LB_UDP_MAX);
	__type(key, struct service_lb_udp_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_udp_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SERVICE_LB_AFFINITY_MAX);
	__type(key, struct service_lb_affinity_key);
	__type(value, struct service_lb_affinity_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_affinity_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SERVICE_LB_NAT_MAX);
	__type(key, struct service_lb_nat_key);
	__type(value, struct service_lb_nat_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_nat_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct service_lb_node);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_node_v1 SEC(".maps");

/* The inner arrays are made by the agent, SERVICE_LB_MAGLEV_PAIRS(M)
 * elements each: BPF_F_INNER_MAP lets their size differ from this
 * template's (M is the agent's setting, the program reads it from the table). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, SERVICE_LB_MAGLEV_MAX);
	__type(key, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, SERVICE_LB_MAGLEV_PAIRS(1));
		/* Sizes, not BTF types: an object that never reads a table (the
		 * socket programs) would carry the value type as a bare declaration. */
		__uint(key_size, sizeof(__u32));
		__uint(value_size, sizeof(struct service_lb_maglev_pair));
		__uint(map_flags, BPF_F_INNER_MAP);
	});
} service_lb_maglev_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SERVICE_LB_PACKET_COUNTERS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_packets_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_host_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SERVICE_LB_SOURCE_RANGES_MAX);
	__type(key, struct service_lb_source_range_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_lb_source_ranges_v1 SEC(".maps");

/* A backend of `service` by id: null if the id is gone or names another
 * service's backend (ids are per service; a remembered one may be stale). */
static __always_inline struct service_lb_backend *service_backend(const struct service_lb_value *service, __u32 id)
{
	struct service_lb_backend *backend;

	if (!id)
		return 0;
	backend = bpf_map_lookup_elem(&service_lb_backends_v1, &id);
	return backend && backend->service_id == service->service_id ? backend : 0;
}

/* Copies backend `id` of `service` into `chosen`: 1, or 0 when it is gone. */
static __always_inline int copy_backend(const struct service_lb_value *service, __u32 id,
					struct service_lb_backend *chosen)
{
	struct service_lb_backend *backend = service_backend(service, id);

	if (!backend)
		return 0;
	*chosen = *backend;
	return 1;
}

/* The backend a slot of `service` names, into `chosen`: from the slot
 * itself, or from the backends map for a slot written without its address. */
static __always_inline int slot_backend(const struct service_lb_value *service, const struct service_lb_value *slot,
					struct service_lb_backend *chosen)
{
	if (!slot->backend_address)
		return copy_backend(service, slot->backend_id, chosen);
	chosen->address = slot->backend_address;
	chosen->port = slot->backend_port;
	chosen->service_id = service->service_id;
	return 1;
}

/* A backend picked at random among the service's slots. While the agent
 * shrinks a service, a reader may hold the old count and miss a slot, or
 * the backend a slot named: slot 1 is the last to go, so it takes over. */
static __always_inline int random_backend(struct service_lb_key *key, const struct service_lb_value *service,
					  struct service_lb_backend *chosen, __u32 *id)
{
	struct service_lb_value *slot;

	key->slot = bpf_get_prandom_u32() % service->count + 1;
	slot = bpf_map_lookup_elem(&service_lb_services_v1, key);
	if (!slot || !slot_backend(service, slot, chosen)) {
		key->slot = 1;
		slot = bpf_map_lookup_elem(&service_lb_services_v1, key);
		if (!slot || !slot_backend(service, slot, chosen))
			return 0;
	}
	*id = slot->backend_id;
	return 1;
}

/* The backend the service's Maglev table gives a flow of hash `flow_hash`
 * (the same on every node), or 0 when the service has no table (none
 * written yet, or being removed) or the slot names a backend gone since. */
static __always_inline int maglev_backend(const struct service_lb_value *service, __u32 flow_hash,
					  struct service_lb_backend *chosen, __u32 *id)
{
	struct service_lb_maglev_pair *pair;
	__u32 index = 0, slot, entry;
	void *table;

	table = bpf_map_lookup_elem(&service_lb_maglev_v1, &service->service_id);
	if (!table)
		return 0;
	pair = bpf_map_lookup_elem(table, &index); /* (M, stamp) */
	if (!pair || !pair->slot[0])
		return 0;
	slot = flow_hash % pair->slot[0];
	index = 1 + slot / 2;
	pair = bpf_map_lookup_elem(table, &index);
	if (!pair)
		return 0;
	entry = pair->slot[slot & 1];
	if (!copy_backend(service, entry, chosen))
		return 0;
	*id = entry;
	return 1;
}

/*
 * The backend of `service` for a client, into `chosen` and `*id`: the one
 * `*id` names on entry when the caller already has one (a UDP socket's) and
 * it still serves the service, else under ClientIP affinity the one the
 * client had while the timeout runs, else the Maglev table's for
 * `flow_hash` (a packet from outside; null for a socket), else a random one
 * (and whenever the table is missing). With affinity the choice is
 * remembered for the client `affinity_cookie` stands for (a network
 * namespace's cookie, or a client address). 0 when the service is being
 * removed.
 */
static __always_inline int choose_backend(struct service_lb_key *key, const struct service_lb_value *service,
					  __u64 affinity_cookie, const __u32 *flow_hash,
					  struct service_lb_backend *chosen, __u32 *id)
{
	struct service_lb_affinity_key affinity_key = {
		.netns_cookie = affinity_cookie,
		.service_id = service->service_id,
	};
	int found = *id && copy_backend(service, *id, chosen);
	__u32 now = 0;

	if (service->affinity_timeout) {
		now = bpf_ktime_get_boot_ns() / NSEC_PER_SEC;
		if (!found) {
			struct service_lb_affinity_value *affine =
				bpf_map_lookup_elem(&service_lb_affinity_v1, &affinity_key);

			if (affine && now - affine->last_used <= service->affinity_timeout) {
				*id = affine->backend_id;
				found = copy_backend(service, *id, chosen);
			}
		}
	}
	if (!found && flow_hash)
		found = maglev_backend(service, *flow_hash, chosen, id);
	if (!found)
		found = random_backend(key, service, chosen, id);
	if (found && service->affinity_timeout) {
		struct service_lb_affinity_value affine = {.backend_id = *id, .last_used = now};

		bpf_map_update_elem(&service_lb_affinity_v1, &affinity_key, &affine, BPF_ANY);
	}
	return found;
}

#endif
