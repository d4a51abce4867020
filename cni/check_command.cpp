// CHECK: the pod's interface (exists, up, address, routes, MTU) and the
// agent's endpoint, against prevResult. Every difference is named.
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "agent_client.hpp"
#include "cni_error.hpp"
#include "cni_versions.hpp"
#include "commands.hpp"
#include "host_veth_name.hpp"
#include "netlink.hpp"
#include "netns.hpp"
#include "membrane/model.hpp"

namespace membrane::cni {
namespace {

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

bool has_route(const std::vector<RouteInfo>& routes, int oif, const std::string& dst, const std::string& gateway) {
    return std::any_of(routes.begin(), routes.end(), [&](const RouteInfo& r) {
        return r.oif == oif && r.dst == dst && r.gateway == gateway;
    });
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
    return out;
}

}  // namespace

void check(const Invocation& in) {
    const Environment& env = in.env;
    const NetworkConfig& config = in.config;
    if (!version_has_check(config.cni_version))
        throw CniError(ErrorCode::IncompatibleVersion,
                       "CHECK needs cniVersion 0.4.0 or later; the config is " + config.cni_version);
    if (!config.prev_result)
        throw CniError(ErrorCode::InvalidNetworkConfig, "invalid network config: CHECK needs prevResult");
    const Result& prev = *config.prev_result;
    const auto expected_ip = find_pod_ipv4(prev, env.ifname);
    if (!expected_ip)
        throw CniError(ErrorCode::CheckMismatch, "prevResult has no IPv4 address for interface " + env.ifname);
    const std::string pod_ip = ipv4_of_cidr(expected_ip->address);

    // Primary mode is recognisable by our derived host veth in prevResult.
    const std::string our_host_name = host_veth_name(env.container_id, env.ifname);
    const bool primary = std::any_of(prev.interfaces.begin(), prev.interfaces.end(),
                                     [&](const ResultInterface& i) { return i.name == our_host_name; });

    const Netns netns(env.netns);
    AgentClient agent(config.dbus_address);
    std::vector<std::string> problems;

    std::optional<LinkInfo> pod;
    std::vector<std::string> addresses;
    std::vector<RouteInfo> routes;
    netns.run([&] {
        Netlink nl;
        pod = nl.find_link(env.ifname);
        if (!pod) return;
        addresses = nl.ipv4_addresses(pod->ifindex);
        routes = nl.ipv4_routes();
    });
    if (!pod) throw CniError(ErrorCode::CheckMismatch, "interface " + env.ifname + " is missing from " + env.netns);

    if (!pod->up) problems.push_back(env.ifname + " is down");
    const std::string want_address = primary ? pod_ip + "/32" : expected_ip->address;
    if (std::find(addresses.begin(), addresses.end(), want_address) == addresses.end())
        problems.push_back(env.ifname + " lacks address " + want_address);
    for (const auto& iface : prev.interfaces)
        if (iface.name == env.ifname && !iface.mac.empty() && lowercase(iface.mac) != lowercase(pod->mac))
            problems.push_back(env.ifname + " has MAC " + pod->mac + ", prevResult says " + iface.mac);

    Netlink host;
    std::string host_name;
    if (primary) {
        host_name = our_host_name;
        const std::string gateway = expected_ip->gateway;
        if (!gateway.empty()) {
            if (!has_route(routes, pod->ifindex, gateway + "/32", ""))
                problems.push_back("no route " + gateway + " dev " + env.ifname + " scope link in the pod");
            if (!has_route(routes, pod->ifindex, "0.0.0.0/0", gateway))
                problems.push_back("no default route via " + gateway + " dev " + env.ifname + " in the pod");
        }
        const auto host_link = host.find_link(host_name);
        if (!host_link) {
            problems.push_back("host interface " + host_name + " is missing");
        } else {
            if (!host_link->up) problems.push_back("host interface " + host_name + " is down");
            if (host_link->mtu != pod->mtu)
                problems.push_back(env.ifname + " has MTU " + std::to_string(pod->mtu) + ", host side " + host_name +
                                   " has " + std::to_string(host_link->mtu));
            if (!has_route(host.ipv4_routes(), host_link->ifindex, pod_ip + "/32", ""))
                problems.push_back("no route " + pod_ip + "/32 dev " + host_name + " on the node");
        }
        if (config.mtu && pod->mtu != *config.mtu)
            problems.push_back(env.ifname + " has MTU " + std::to_string(pod->mtu) + ", the config says " +
                               std::to_string(*config.mtu));
    } else if (pod->peer_ifindex != 0) {
        if (const auto host_link = host.find_link(pod->peer_ifindex)) host_name = host_link->name;
    }

    const auto endpoint = agent.find_endpoint(env.container_id, env.ifname);
    if (!endpoint) {
        problems.push_back("the agent has no endpoint for container " + env.container_id + " interface " + env.ifname);
    } else {
        if (endpoint->ipv4 != pod_ip)
            problems.push_back("the agent's endpoint has address " + endpoint->ipv4 + ", prevResult says " + pod_ip);
        if (lowercase(endpoint->mac) != lowercase(pod->mac))
            problems.push_back("the agent's endpoint has MAC " + endpoint->mac + ", " + env.ifname + " has " + pod->mac);
        if (!host_name.empty() && endpoint->host_ifname != host_name)
            problems.push_back("the agent's endpoint is on host interface " + endpoint->host_ifname + ", expected " +
                               host_name);
        // An agent too old to report a state says nothing; a name this
        // plugin does not know is not taken for ready.
        if (!endpoint->state.empty()) {
            const auto state = parse_endpoint_state(endpoint->state);
            if (!state)
                problems.push_back("the agent's endpoint is in state '" + endpoint->state +
                                   "', which this plugin does not know");
            else if (*state != EndpointState::ready)
                problems.push_back("the agent's endpoint is " + endpoint->state);
        }
    }
    if (!problems.empty()) throw CniError(ErrorCode::CheckMismatch, "CHECK failed: " + join(problems));
}

}  // namespace membrane::cni
