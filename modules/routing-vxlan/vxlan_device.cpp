#include "vxlan_device.hpp"

#include <net/if.h>

#include <cstring>
#include <stdexcept>

extern "C" {
#include <netlink/route/link/vxlan.h>
}

#include <membrane/netlink.hpp>

namespace routing_vxlan {

using namespace membrane::netlink;  // NOLINT: the SDK's libnl RAII types
namespace {

// Why an existing VXLAN device cannot be adopted as is, or "" if it can.
std::string mismatch(rtnl_link* link, const VxlanDeviceSpec& spec) {
    if (rtnl_link_vxlan_get_collect_metadata(link) != 1) return "it is not in collect-metadata (external) mode";
    std::uint32_t port = 0;
    if (rtnl_link_vxlan_get_port(link, &port) < 0 || port != spec.port) {
        return "its UDP port is " + std::to_string(port) + ", not " + std::to_string(spec.port);
    }
    // Learning would fill the FDB from overlay traffic nobody reads.
    if (rtnl_link_vxlan_get_learning(link) > 0) return "learning is on";
    return "";
}

void create(nl_sock* socket, const VxlanDeviceSpec& spec) {
    Link link(rtnl_link_vxlan_alloc());
    if (!link) throw std::runtime_error("cannot allocate a VXLAN link object");
    rtnl_link_set_name(link.get(), spec.name.c_str());
    rtnl_link_set_mtu(link.get(), spec.mtu);
    rtnl_link_set_flags(link.get(), IFF_UP | IFF_NOARP);
    // IFLA_VXLAN_COLLECT_METADATA: the tunnel key (remote, VNI) comes with
    // each packet from BPF, so one device serves every node.
    int err = rtnl_link_vxlan_set_collect_metadata(link.get(), 1);
    if (err >= 0) err = rtnl_link_vxlan_set_learning(link.get(), 0);
    if (err >= 0) err = rtnl_link_vxlan_set_port(link.get(), spec.port);
    if (err < 0) throw NetlinkError("cannot describe VXLAN device " + spec.name, err);
    if (err = rtnl_link_add(socket, link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
        throw NetlinkError("cannot create VXLAN device " + spec.name + " (external, port " +
                               std::to_string(spec.port) + ")",
                           err);
    }
}

// Brings MTU and flags to the spec, touching the device only if they differ.
// NOARP: the node's own packets are routed into the device ("encap ip" node
// routes) with no neighbour to resolve; the receiving node accepts whatever
// inner MAC they carry (mbr_from_overlay).
void align(nl_sock* socket, rtnl_link* current, const VxlanDeviceSpec& spec, spdlog::logger& log) {
    const bool mtu_ok = rtnl_link_get_mtu(current) == spec.mtu;
    const unsigned int wanted_flags = IFF_UP | IFF_NOARP;
    const bool flags_ok = (rtnl_link_get_flags(current) & wanted_flags) == wanted_flags;
    if (mtu_ok && flags_ok) return;
    Link change(rtnl_link_alloc());
    if (!change) throw std::runtime_error("cannot allocate a link object");
    if (!mtu_ok) rtnl_link_set_mtu(change.get(), spec.mtu);
    if (!flags_ok) rtnl_link_set_flags(change.get(), wanted_flags);
    if (const int err = rtnl_link_change(socket, current, change.get(), 0); err < 0) {
        throw NetlinkError("cannot set MTU " + std::to_string(spec.mtu) + ", noarp and up on " + spec.name, err);
    }
    log.info("VXLAN device {}: MTU {}, noarp, up", spec.name, spec.mtu);
}

}  // namespace

int ensure_vxlan_device(const VxlanDeviceSpec& spec, spdlog::logger& log) {
    NlSocket socket = connect_route_socket();
    if (Link existing = find_link(socket.get(), spec.name)) {
        if (rtnl_link_is_vxlan(existing.get()) != 1) {
            const char* kind = rtnl_link_get_type(existing.get());
            throw std::runtime_error("link " + spec.name + " exists and is " + (kind ? kind : "not a VXLAN device") +
                                     "; refusing to take it over (set [module.routing-vxlan] device to another name)");
        }
        const std::string why = mismatch(existing.get(), spec);
        if (why.empty()) {
            log.info("VXLAN device {} adopted (external, port {})", spec.name, spec.port);
        } else {
            // Only a VXLAN device by our name: ours from an earlier run with
            // other settings. Remaking it is the only way to change the port.
            log.warn("VXLAN device {} exists but {}: recreating it", spec.name, why);
            if (const int err = rtnl_link_delete(socket.get(), existing.get()); err < 0) {
                throw NetlinkError("cannot delete VXLAN device " + spec.name, err);
            }
            create(socket.get(), spec);
            log.info("VXLAN device {} created (external, port {}, MTU {})", spec.name, spec.port, spec.mtu);
        }
    } else {
        create(socket.get(), spec);
        log.info("VXLAN device {} created (external, port {}, MTU {})", spec.name, spec.port, spec.mtu);
    }

    Link made = find_link(socket.get(), spec.name);
    if (!made) throw std::runtime_error("VXLAN device " + spec.name + " vanished right after it was made");
    align(socket.get(), made.get(), spec, log);  // rtnl_link_add may not apply IFF_UP on every kernel
    return rtnl_link_get_ifindex(made.get());
}

}  // namespace routing_vxlan
