// RAII for the libnl-route-3 objects this module uses, and errors that name
// the failed operation.
#pragma once

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

extern "C" {
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
}

namespace direct_routing {

struct NlSocketFree {
    void operator()(nl_sock* socket) const { nl_socket_free(socket); }
};
using NlSocket = std::unique_ptr<nl_sock, NlSocketFree>;

struct NlAddrPut {
    void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
using NlAddr = std::unique_ptr<nl_addr, NlAddrPut>;

struct RoutePut {
    void operator()(rtnl_route* route) const { rtnl_route_put(route); }
};
using Route = std::unique_ptr<rtnl_route, RoutePut>;

struct CacheFree {
    void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using Cache = std::unique_ptr<nl_cache, CacheFree>;

class NetlinkError : public std::runtime_error {
public:
    NetlinkError(const std::string& what, int nl_error)
        : std::runtime_error(what + ": " + nl_geterror(std::abs(nl_error))), code_(std::abs(nl_error)) {}
    int code() const { return code_; }

private:
    int code_;
};

// A connected NETLINK_ROUTE socket in the agent's network namespace.
inline NlSocket connect_route_socket() {
    NlSocket socket(nl_socket_alloc());
    if (!socket) throw std::runtime_error("cannot allocate a netlink socket");
    if (const int err = nl_connect(socket.get(), NETLINK_ROUTE); err < 0) {
        throw NetlinkError("cannot connect a NETLINK_ROUTE socket", err);
    }
    return socket;
}

// "10.10.2.0/24" or "192.168.50.2" as an IPv4 netlink address.
inline NlAddr parse_ipv4(const std::string& text) {
    nl_addr* raw = nullptr;
    if (const int err = nl_addr_parse(text.c_str(), AF_INET, &raw); err < 0) {
        throw NetlinkError("'" + text + "' is not an IPv4 address or prefix", err);
    }
    return NlAddr(raw);
}

}  // namespace direct_routing
