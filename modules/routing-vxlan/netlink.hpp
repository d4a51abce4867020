// RAII for the libnl-route-3 objects this module uses, and errors that name
// the failed operation.
#pragma once

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

extern "C" {
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
}

namespace routing_vxlan {

struct NlSocketFree {
    void operator()(nl_sock* socket) const { nl_socket_free(socket); }
};
using NlSocket = std::unique_ptr<nl_sock, NlSocketFree>;

struct LinkPut {
    void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using Link = std::unique_ptr<rtnl_link, LinkPut>;

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

}  // namespace routing_vxlan
