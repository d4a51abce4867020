// The overlay device: a VXLAN device in collect-metadata ("external") mode,
// so one device serves every remote node. It carries what the BPF paths leave
// to the kernel (the node's own traffic, TTL expiry, fallbacks): the stage or
// a node route sets the tunnel key (remote node, VNI = source identity) per
// packet and the device adds the headers. Made with libnl-route-3, adopted if
// an earlier run left it.
#pragma once

#include <cstdint>
#include <string>

#include <spdlog/logger.h>

namespace routing_vxlan {

struct VxlanDeviceSpec {
    std::string name;        // e.g. "mbr_vxlan"
    std::uint16_t port = 0;  // UDP destination port, e.g. 8472
    std::uint32_t mtu = 0;   // underlay MTU - encapsulation overhead
};

// Makes sure `spec.name` exists as a VXLAN device in collect-metadata mode
// on `spec.port`, learning off, with `spec.mtu`, up; returns its ifindex.
// An existing device that matches is adopted without a change that would
// disturb traffic (a reload keeps it); a VXLAN device that does not (other
// port, not external) is replaced; any other kind of link by that name is
// refused, never deleted.
int ensure_vxlan_device(const VxlanDeviceSpec& spec, spdlog::logger& log);

}  // namespace routing_vxlan
