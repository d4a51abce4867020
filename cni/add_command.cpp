// ADD: primary mode (membrane makes the veth) and chained mode (after e.g.
// bridge or ptp with host-local: take the interface and address from prevResult).
#include <linux/rtnetlink.h>

#include "agent_client.hpp"
#include "cni_error.hpp"
#include "commands.hpp"
#include "host_veth_name.hpp"
#include "netlink.hpp"
#include "netns.hpp"
#include "sysctl.hpp"
#include "undo_stack.hpp"

namespace membrane::cni {
namespace {

void require_ipv4(const std::string& value, const char* what) {
    if (ipv4_of_cidr(value + "/32").empty())
        throw CniError(ErrorCode::AgentRefused, std::string("the agent's lease has an invalid ") + what + " '" + value + "'");
}

}  // namespace

nlohmann::json add_primary(const Invocation& in) {
    const Environment& env = in.env;
    const Netns netns(env.netns);
    AgentClient agent(in.config.dbus_address);
    UndoStack undo;

    const Lease lease = agent.allocate_address(env.container_id, env.ifname);
    undo.push([&] { agent.release_address(env.container_id, env.ifname); });
    require_ipv4(lease.ipv4, "address");
    require_ipv4(lease.gateway, "gateway");
    const std::uint32_t mtu = in.config.mtu.value_or(lease.mtu);
    const std::string pod_cidr = lease.ipv4 + "/32";  // always a /32: the gateway is reached by a link route

    const std::string host_name = host_veth_name(env.container_id, env.ifname);
    Netlink host;
    // The name is derived from (container, ifname): a link of that name is a
    // leftover of an earlier ADD of this very attachment (e.g. a crashed plugin).
    host.delete_link(host_name);
    host.create_veth(host_name, env.ifname, netns.fd(), mtu);
    undo.push([&] { Netlink().delete_link(host_name); });

    // Pod side: IPv6 off, up, address, link route to the gateway, default route through it.
    LinkInfo pod;
    netns.run([&] {
        Netlink nl;
        const auto link = nl.find_link(env.ifname);
        if (!link)
            throw CniError(ErrorCode::InterfaceSetup, "the veth end " + env.ifname + " did not appear in " + env.netns);
        // Before the link is up, so the pod never sends IPv6 (the datapath would drop it).
        disable_ipv6(env.ifname);
        nl.set_up(*link);
        nl.add_ipv4_address(link->ifindex, pod_cidr);
        nl.add_route(link->ifindex, lease.gateway + "/32", "", RT_SCOPE_LINK);
        nl.add_route(link->ifindex, "0.0.0.0/0", lease.gateway, RT_SCOPE_UNIVERSE);
        pod = *link;
    });

    // Host side (this is the agent's namespace): up, and the node's route to the pod.
    const auto host_link = host.find_link(host_name);
    if (!host_link) throw CniError(ErrorCode::InterfaceSetup, "the veth end " + host_name + " vanished");
    host.set_up(*host_link);
    host.add_route(host_link->ifindex, pod_cidr, "", RT_SCOPE_LINK);

    undo.push([&] { agent.delete_endpoint(env.container_id, env.ifname); });
    agent.create_endpoint({env.container_id, env.ifname, env.netns, host_name, lease.ipv4, pod.mac, in.labels, in.config.ports});
    undo.commit();

    Result result;
    result.interfaces.push_back({host_name, host_link->mac, ""});
    result.interfaces.push_back({env.ifname, pod.mac, env.netns});
    result.ips.push_back({pod_cidr, lease.gateway, 1});
    result.routes.push_back({"0.0.0.0/0", lease.gateway});
    return result_json(result, in.config.cni_version);
}

nlohmann::json add_chained(const Invocation& in) {
    const Environment& env = in.env;
    const Result& prev = *in.config.prev_result;
    const auto ip = find_pod_ipv4(prev, env.ifname);
    if (!ip)
        throw CniError(ErrorCode::PrevResultUnusable,
                       "chained mode: prevResult has no IPv4 address for interface " + env.ifname,
                       in.config.prev_result_json->dump());
    const Netns netns(env.netns);

    // The pod's interface, and through its veth peer index the host side.
    LinkInfo pod;
    netns.run([&] {
        Netlink nl;
        const auto link = nl.find_link(env.ifname);
        if (!link)
            throw CniError(ErrorCode::PrevResultUnusable,
                           "chained mode: interface " + env.ifname + " is not in " + env.netns);
        pod = *link;
    });
    if (pod.kind != "veth" || pod.peer_ifindex == 0)
        throw CniError(ErrorCode::PrevResultUnusable, "chained mode: " + env.ifname + " in " + env.netns +
                                                          " is not a veth (it is '" + pod.kind +
                                                          "'), so there is no host side to attach to");
    Netlink host;
    const auto host_link = host.find_link(pod.peer_ifindex);
    if (!host_link || host_link->kind != "veth")
        throw CniError(ErrorCode::PrevResultUnusable, "chained mode: the host side of " + env.ifname + " (link #" +
                                                          std::to_string(pod.peer_ifindex) +
                                                          ") is not in this network namespace");

    AgentClient agent(in.config.dbus_address);
    UndoStack undo;
    // The previous plugin sized the interface for its own network; traffic
    // from it crosses Membrane's, so it gets Membrane's pod MTU when that is
    // lower (the overlay's headers must fit). Never raised.
    const std::uint32_t mtu = in.config.mtu.value_or(agent.pod_mtu());
    if (pod.mtu > mtu) {
        const std::uint32_t before = pod.mtu;
        netns.run([&] { Netlink().set_mtu(pod, mtu); });
        undo.push([&, before] { netns.run([&] { Netlink().set_mtu(pod, before); }); });
    }
    agent.create_endpoint(
        {env.container_id, env.ifname, env.netns, host_link->name, ipv4_of_cidr(ip->address), pod.mac, in.labels,
         in.config.ports});
    undo.commit();
    return convert_result_json(*in.config.prev_result_json, in.config.cni_version);
}

}  // namespace membrane::cni
