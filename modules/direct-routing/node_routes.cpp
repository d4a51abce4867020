#include "node_routes.hpp"

#include <linux/rtnetlink.h>

#include <array>
#include <functional>

extern "C" {
#include <netlink/route/nexthop.h>
}

namespace direct_routing {
namespace {

std::string to_string(nl_addr* addr) {
    std::array<char, 64> text{};
    return nl_addr2str(addr, text.data(), text.size());
}

// A main-table IPv4 unicast route to `dst`, the fields a delete matches on.
Route route_to(nl_addr* dst) {
    Route route(rtnl_route_alloc());
    if (!route) throw std::runtime_error("cannot allocate a route object");
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
    rtnl_route_set_protocol(route.get(), kRouteProtocol);
    if (const int err = rtnl_route_set_dst(route.get(), dst); err < 0) {
        throw NetlinkError("cannot set route destination " + to_string(dst), err);
    }
    return route;
}

// Calls `visit` for every IPv4 route of the main table.
void for_each_main_route(nl_sock* socket, const std::function<void(rtnl_route*)>& visit) {
    nl_cache* raw = nullptr;
    if (const int err = rtnl_route_alloc_cache(socket, AF_INET, 0, &raw); err < 0) {
        throw NetlinkError("cannot list IPv4 routes", err);
    }
    Cache cache(raw);
    for (nl_object* object = nl_cache_get_first(cache.get()); object; object = nl_cache_get_next(object)) {
        auto* route = reinterpret_cast<rtnl_route*>(object);
        if (rtnl_route_get_table(route) == RT_TABLE_MAIN) visit(route);
    }
}

}  // namespace

NodeRoutes::NodeRoutes(spdlog::logger& log) : socket_(connect_route_socket()), log_(log) {}

bool NodeRoutes::install(const std::string& pod_cidr, const std::string& node_ip) {
    NlAddr dst = parse_ipv4(pod_cidr);
    NlAddr gateway = parse_ipv4(node_ip);

    std::string foreign;
    bool in_place = false;
    for_each_main_route(socket_.get(), [&](rtnl_route* route) {
        nl_addr* other = rtnl_route_get_dst(route);
        if (!other || nl_addr_cmp(other, dst.get()) != 0) return;
        if (rtnl_route_get_protocol(route) != kRouteProtocol) {
            foreign = std::to_string(rtnl_route_get_protocol(route));
            return;
        }
        rtnl_nexthop* hop = rtnl_route_get_nnexthops(route) == 1 ? rtnl_route_nexthop_n(route, 0) : nullptr;
        nl_addr* via = hop ? rtnl_route_nh_get_gateway(hop) : nullptr;
        in_place = via && nl_addr_cmp(via, gateway.get()) == 0;
    });
    if (!foreign.empty()) {
        log_.warn("direct-routing: a route to {} with protocol {} exists and is not ours; leaving it", pod_cidr,
                  foreign);
        return false;
    }
    if (in_place) {
        log_.debug("direct-routing: route {} via {} already in place", pod_cidr, node_ip);
        return true;
    }

    Route route = route_to(dst.get());
    rtnl_nexthop* next_hop = rtnl_route_nh_alloc();
    if (!next_hop) throw std::runtime_error("cannot allocate a next hop");
    rtnl_route_nh_set_gateway(next_hop, gateway.get());
    rtnl_route_add_nexthop(route.get(), next_hop);  // the route owns it now
    if (const int err = rtnl_route_add(socket_.get(), route.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
        throw NetlinkError("cannot install route " + pod_cidr + " via " + node_ip, err);
    }
    log_.info("direct-routing: route {} via {} (proto {})", pod_cidr, node_ip, kRouteProtocol);
    return true;
}

void NodeRoutes::remove(const std::string& pod_cidr) {
    NlAddr dst = parse_ipv4(pod_cidr);
    // The protocol in the request makes the kernel match only our route.
    Route route = route_to(dst.get());
    const int err = rtnl_route_delete(socket_.get(), route.get(), 0);
    if (err == -NLE_OBJ_NOTFOUND) return;
    if (err < 0) throw NetlinkError("cannot remove route " + pod_cidr, err);
    log_.info("direct-routing: removed route {}", pod_cidr);
}

std::set<std::string> NodeRoutes::installed() {
    std::set<std::string> prefixes;
    for_each_main_route(socket_.get(), [&](rtnl_route* route) {
        if (rtnl_route_get_protocol(route) == kRouteProtocol && rtnl_route_get_dst(route)) {
            prefixes.insert(to_string(rtnl_route_get_dst(route)));
        }
    });
    return prefixes;
}

std::string NodeRoutes::canonical(const std::string& prefix) { return to_string(parse_ipv4(prefix).get()); }

}  // namespace direct_routing
