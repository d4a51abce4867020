// The kernel routes to other nodes' pod CIDRs: "<pod CIDR> via <node IP>" in
// the main table, marked with our own route protocol number so that they are
// recognisable (`ip route show proto 211`) and only ours are ever removed.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include <spdlog/logger.h>

#include <membrane/netlink.hpp>

namespace direct_routing {

using namespace membrane::netlink;  // NOLINT: the SDK's libnl RAII types

// rtnetlink protocol of our routes: above the kernel's and routing daemons'
// numbers (RTPROT_* stop at 192 in /etc/iproute2/rt_protos).
constexpr std::uint8_t kRouteProtocol = 211;

class NodeRoutes {
public:
    explicit NodeRoutes(spdlog::logger& log);

    // Installs or replaces "<pod_cidr> via <node_ip>". A route to the same
    // prefix that is not ours (another protocol) is left alone and false
    // returned: someone else routes that prefix.
    bool install(const std::string& pod_cidr, const std::string& node_ip);
    // Removes our route to `pod_cidr`, if there is one; never another's.
    void remove(const std::string& pod_cidr);
    // The prefixes our routes lead to now, canonical (see canonical()).
    std::set<std::string> installed();

    // "10.10.2.0/24" as the kernel prints it back; throws if not IPv4.
    static std::string canonical(const std::string& prefix);

private:
    NlSocket socket_;
    spdlog::logger& log_;
};

}  // namespace direct_routing
