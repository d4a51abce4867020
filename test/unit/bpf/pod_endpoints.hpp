// What the model writes for a local pod, for the datapath tests that build
// pods by hand (PodLab): its endpoints map entry and its ipcache /32.
#pragma once

#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "bpf/registry.hpp"
#include "pod_frames.hpp"
#include "pod_lab.hpp"

namespace membrane::kernel::test {

inline void add_pod_endpoint(Registry& registry, const PodLab& lab, const Pod& pod, std::uint64_t id,
                             std::uint32_t identity) {
    mbr_endpoint_key key{.ip4 = ipv4_be(pod.ip)};
    mbr_endpoint_value value{};
    value.endpoint_id = id;
    value.ifindex = static_cast<std::uint32_t>(lab.node_ifindex(pod.host_veth));
    value.identity = identity;
    std::memcpy(value.mac, pod.mac.data(), sizeof(value.mac));
    std::memcpy(value.host_mac, pod.host_mac.data(), sizeof(value.host_mac));
    ASSERT_EQ(bpf_map_update_elem(registry.core_map_fd(MBR_MAP_ENDPOINTS), &key, &value, BPF_ANY), 0);

    mbr_ipcache_key prefix{.prefixlen = 32, .ip4 = key.ip4};
    mbr_ipcache_value where{.identity = identity, .tunnel_endpoint = 0, .flags = 0, .reserved = 0};
    ASSERT_EQ(bpf_map_update_elem(registry.core_map_fd(MBR_MAP_IPCACHE), &prefix, &where, BPF_ANY), 0);
}

}  // namespace membrane::kernel::test
