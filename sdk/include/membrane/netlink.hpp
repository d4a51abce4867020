// RAII for the libnl-route-3 objects networking modules use, and errors that
// name the failed operation. Header-only; a module that includes it links
// libnl-3.0 and libnl-route-3.0 itself:
//   pkg_check_modules(LIBNL_ROUTE REQUIRED IMPORTED_TARGET libnl-3.0 libnl-route-3.0)
//   target_link_libraries(<module> PRIVATE PkgConfig::LIBNL_ROUTE)
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
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
}

namespace membrane::netlink {

struct NlSocketFree {
    void operator()(nl_sock* socket) const { nl_socket_free(socket); }
};
using NlSocket = std::unique_ptr<nl_sock, NlSocketFree>;

struct NlAddrPut {
    void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
using NlAddr = std::unique_ptr<nl_addr, NlAddrPut>;

struct LinkPut {
    void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using Link = std::unique_ptr<rtnl_link, LinkPut>;

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

// The link named `name` as the kernel has it now, or null if there is none.
inline Link find_link(nl_sock* socket, const std::string& name) {
    rtnl_link* raw = nullptr;
    const int err = rtnl_link_get_kernel(socket, 0, name.c_str(), &raw);
    if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV) return nullptr;
    if (err < 0) throw NetlinkError("cannot look up link " + name, err);
    return Link(raw);
}

// "10.10.2.0/24" or "192.168.50.2" as an IPv4 netlink address.
inline NlAddr parse_ipv4(const std::string& text) {
    nl_addr* raw = nullptr;
    if (const int err = nl_addr_parse(text.c_str(), AF_INET, &raw); err < 0) {
        throw NetlinkError("'" + text + "' is not an IPv4 address or prefix", err);
    }
    return NlAddr(raw);
}

}  // namespace membrane::netlink
