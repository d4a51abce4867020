#include "netlink.hpp"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "cni_error.hpp"

namespace membrane::cni {
namespace {

// Owners for libnl's reference-counted objects.
struct LinkPut { void operator()(rtnl_link* p) const { rtnl_link_put(p); } };
struct AddrPut { void operator()(nl_addr* p) const { nl_addr_put(p); } };
struct RtAddrPut { void operator()(rtnl_addr* p) const { rtnl_addr_put(p); } };
struct RoutePut { void operator()(rtnl_route* p) const { rtnl_route_put(p); } };
struct CacheFree { void operator()(nl_cache* p) const { nl_cache_free(p); } };
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using AddrPtr = std::unique_ptr<nl_addr, AddrPut>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, RtAddrPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using CachePtr = std::unique_ptr<nl_cache, CacheFree>;

[[noreturn]] void fail(const std::string& what, int err) {
    throw CniError(ErrorCode::InterfaceSetup, what + ": " + nl_geterror(err));
}

AddrPtr parse_ipv4(const std::string& text) {
    nl_addr* addr = nullptr;
    if (int err = nl_addr_parse(text.c_str(), AF_INET, &addr); err < 0) fail("bad IPv4 address '" + text + "'", err);
    return AddrPtr(addr);
}

std::string ipv4_text(nl_addr* addr, bool with_prefix) {
    std::string ip = "0.0.0.0";
    if (addr && nl_addr_get_family(addr) == AF_INET && nl_addr_get_len(addr) == 4) {
        char buf[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, nl_addr_get_binary_addr(addr), buf, sizeof buf)) ip = buf;
    }
    if (!with_prefix) return ip;
    return ip + "/" + std::to_string(addr ? nl_addr_get_prefixlen(addr) : 0);
}

LinkInfo describe(rtnl_link* link) {
    LinkInfo info;
    info.ifindex = rtnl_link_get_ifindex(link);
    if (const char* name = rtnl_link_get_name(link)) info.name = name;
    if (nl_addr* mac = rtnl_link_get_addr(link)) {
        char buf[64];
        info.mac = nl_addr2str(mac, buf, sizeof buf);
    }
    info.mtu = rtnl_link_get_mtu(link);
    info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
    if (const char* kind = rtnl_link_get_type(link)) info.kind = kind;
    info.peer_ifindex = rtnl_link_get_link(link);
    return info;
}

bool is_not_found(int err) { return err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND; }

}  // namespace

Netlink::Netlink() {
    sock_ = nl_socket_alloc();
    if (!sock_) throw CniError(ErrorCode::InterfaceSetup, "cannot allocate a netlink socket");
    if (int err = nl_connect(sock_, NETLINK_ROUTE); err < 0) {
        nl_socket_free(sock_);
        sock_ = nullptr;
        fail("cannot open a netlink socket", err);
    }
}

Netlink::~Netlink() {
    if (sock_) nl_socket_free(sock_);  // closes it too
}

std::optional<LinkInfo> Netlink::find_link(const std::string& name) {
    rtnl_link* raw = nullptr;
    if (int err = rtnl_link_get_kernel(sock_, 0, name.c_str(), &raw); err < 0) {
        if (is_not_found(err)) return std::nullopt;
        fail("cannot read link " + name, err);
    }
    LinkPtr link(raw);
    return describe(link.get());
}

std::optional<LinkInfo> Netlink::find_link(int ifindex) {
    rtnl_link* raw = nullptr;
    if (int err = rtnl_link_get_kernel(sock_, ifindex, nullptr, &raw); err < 0) {
        if (is_not_found(err)) return std::nullopt;
        fail("cannot read link #" + std::to_string(ifindex), err);
    }
    LinkPtr link(raw);
    return describe(link.get());
}

void Netlink::create_veth(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                          std::uint32_t mtu) {
    LinkPtr link(rtnl_link_veth_alloc());
    if (!link) throw CniError(ErrorCode::InterfaceSetup, "cannot allocate a veth link object");
    rtnl_link_set_name(link.get(), host_name.c_str());
    rtnl_link_set_mtu(link.get(), mtu);
    {
        LinkPtr peer(rtnl_link_veth_get_peer(link.get()));
        rtnl_link_set_name(peer.get(), peer_name.c_str());
        rtnl_link_set_mtu(peer.get(), mtu);
        rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
    }
    if (int err = rtnl_link_add(sock_, link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
        fail("cannot create the veth pair " + host_name + " <-> " + peer_name, err);
}

bool Netlink::delete_link(const std::string& name) {
    LinkPtr link(rtnl_link_alloc());
    rtnl_link_set_name(link.get(), name.c_str());
    if (int err = rtnl_link_delete(sock_, link.get()); err < 0) {
        if (is_not_found(err)) return false;
        fail("cannot delete link " + name, err);
    }
    return true;
}

void Netlink::set_up(const LinkInfo& info) {
    LinkPtr orig(rtnl_link_alloc());
    rtnl_link_set_ifindex(orig.get(), info.ifindex);
    LinkPtr change(rtnl_link_alloc());
    rtnl_link_set_flags(change.get(), IFF_UP);
    if (int err = rtnl_link_change(sock_, orig.get(), change.get(), 0); err < 0)
        fail("cannot bring up " + info.name, err);
}

void Netlink::set_mtu(const LinkInfo& info, std::uint32_t mtu) {
    LinkPtr orig(rtnl_link_alloc());
    rtnl_link_set_ifindex(orig.get(), info.ifindex);
    LinkPtr change(rtnl_link_alloc());
    rtnl_link_set_mtu(change.get(), mtu);
    if (int err = rtnl_link_change(sock_, orig.get(), change.get(), 0); err < 0)
        fail("cannot set MTU " + std::to_string(mtu) + " on " + info.name, err);
}

void Netlink::add_ipv4_address(int ifindex, const std::string& cidr) {
    RtAddrPtr addr(rtnl_addr_alloc());
    AddrPtr local = parse_ipv4(cidr);
    rtnl_addr_set_ifindex(addr.get(), ifindex);
    rtnl_addr_set_family(addr.get(), AF_INET);
    if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) fail("cannot use address " + cidr, err);
    rtnl_addr_set_prefixlen(addr.get(), nl_addr_get_prefixlen(local.get()));
    if (int err = rtnl_addr_add(sock_, addr.get(), 0); err < 0)
        fail("cannot add address " + cidr + " to link #" + std::to_string(ifindex), err);
}

namespace {

RoutePtr make_route(int ifindex, const std::string& dst_cidr, const std::string& gateway, std::uint8_t scope) {
    RoutePtr route(rtnl_route_alloc());
    rtnl_route_set_family(route.get(), AF_INET);
    rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
    rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
    rtnl_route_set_type(route.get(), RTN_UNICAST);
    rtnl_route_set_scope(route.get(), scope);
    AddrPtr dst = parse_ipv4(dst_cidr);
    if (int err = rtnl_route_set_dst(route.get(), dst.get()); err < 0) fail("cannot use route destination " + dst_cidr, err);
    rtnl_nexthop* hop = rtnl_route_nh_alloc();
    rtnl_route_nh_set_ifindex(hop, ifindex);
    if (!gateway.empty()) {
        AddrPtr gw = parse_ipv4(gateway);
        rtnl_route_nh_set_gateway(hop, gw.get());  // takes its own reference
    }
    rtnl_route_add_nexthop(route.get(), hop);  // the route owns the hop now
    return route;
}

}  // namespace

void Netlink::add_route(int ifindex, const std::string& dst_cidr, const std::string& gateway, std::uint8_t scope) {
    RoutePtr route = make_route(ifindex, dst_cidr, gateway, scope);
    if (int err = rtnl_route_add(sock_, route.get(), NLM_F_EXCL); err < 0)
        fail("cannot add route " + dst_cidr + (gateway.empty() ? "" : " via " + gateway) + " dev #" +
                 std::to_string(ifindex),
             err);
}

bool Netlink::delete_route(int ifindex, const std::string& dst_cidr, std::uint8_t scope) {
    RoutePtr route = make_route(ifindex, dst_cidr, "", scope);
    if (int err = rtnl_route_delete(sock_, route.get(), 0); err < 0) {
        if (is_not_found(err) || err == -NLE_NODEV) return false;
        fail("cannot delete route " + dst_cidr + " dev #" + std::to_string(ifindex), err);
    }
    return true;
}

std::vector<std::string> Netlink::ipv4_addresses(int ifindex) {
    nl_cache* raw = nullptr;
    if (int err = rtnl_addr_alloc_cache(sock_, &raw); err < 0) fail("cannot list addresses", err);
    CachePtr cache(raw);
    std::vector<std::string> out;
    for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* addr = reinterpret_cast<rtnl_addr*>(obj);
        if (rtnl_addr_get_family(addr) != AF_INET || rtnl_addr_get_ifindex(addr) != ifindex) continue;
        out.push_back(ipv4_text(rtnl_addr_get_local(addr), false) + "/" +
                      std::to_string(rtnl_addr_get_prefixlen(addr)));
    }
    return out;
}

std::vector<RouteInfo> Netlink::ipv4_routes() {
    nl_cache* raw = nullptr;
    if (int err = rtnl_route_alloc_cache(sock_, AF_INET, 0, &raw); err < 0) fail("cannot list routes", err);
    CachePtr cache(raw);
    std::vector<RouteInfo> out;
    for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
        auto* route = reinterpret_cast<rtnl_route*>(obj);
        if (rtnl_route_get_table(route) != RT_TABLE_MAIN || rtnl_route_get_type(route) != RTN_UNICAST) continue;
        RouteInfo info;
        info.dst = ipv4_text(rtnl_route_get_dst(route), true);
        info.scope = rtnl_route_get_scope(route);
        if (rtnl_route_get_nnexthops(route) > 0) {
            rtnl_nexthop* hop = rtnl_route_nexthop_n(route, 0);
            info.oif = rtnl_route_nh_get_ifindex(hop);
            if (nl_addr* gw = rtnl_route_nh_get_gateway(hop)) info.gateway = ipv4_text(gw, false);
        }
        out.push_back(std::move(info));
    }
    return out;
}

}  // namespace membrane::cni
