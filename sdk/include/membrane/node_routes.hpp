// Kernel routes to other nodes' pod CIDRs, kept in step with the model's
// nodes, for routing modules. One route per remote node in the main table,
// marked with Membrane's route protocol (`ip route show proto 211`) so that
// only ours are ever replaced or removed, whichever routing module made them:
// switching modes hands the routes over instead of leaving stale ones.
//
//   direct-routing  "<pod CIDR> via <node IP>"                   (plain forwarding)
//   routing-vxlan   "<pod CIDR> encap ip id <VNI> dst <node IP> dev <overlay>"
//                   (the kernel's lightweight tunnel sets the tunnel key, so
//                   the node's own stack reaches remote pods through the
//                   collect-metadata device without a BPF program of its own)
//
// Header-only, like membrane/netlink.hpp: a module that includes it links
// libnl-3.0 and libnl-route-3.0 itself.
#pragma once

#include <endian.h>
#include <linux/lwtunnel.h>
#include <linux/rtnetlink.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "membrane/context.hpp"
#include "membrane/events.hpp"
#include "membrane/model.hpp"
#include "membrane/netlink.hpp"

extern "C" {
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/nexthop.h>
}

namespace membrane::netlink {

// Routing modules hand the stack what it must answer or fragment (TTL
// running out, over the path MTU) and bpf_fib_lookup answers FWD_DISABLED
// on a device without forwarding; the global switch also sets the default
// that new pod veths inherit.
inline void enable_ipv4_forwarding(spdlog::logger& log) {
    constexpr const char* kIpForward = "/proc/sys/net/ipv4/ip_forward";
    std::string current;
    std::ifstream(kIpForward) >> current;
    if (current == "1") return;
    std::ofstream out(kIpForward);
    out << "1\n";
    out.flush();
    if (!out) throw std::runtime_error(std::string("cannot enable IPv4 forwarding (") + kIpForward + ")");
    log.info("enabled IPv4 forwarding (net.ipv4.ip_forward=1)");
}

// rtnetlink protocol of Membrane's node routes: above the kernel's and
// routing daemons' numbers (RTPROT_* stop at 192 in /etc/iproute2/rt_protos).
constexpr std::uint8_t kNodeRouteProtocol = 211;

// Where the route to a remote node's pod CIDR leads.
struct NodeRouteTarget {
    std::string gateway;             // "via <gateway>", or empty for a tunnel route:
    int tunnel_ifindex = 0;          //   out of this collect-metadata device,
    std::string tunnel_remote;       //   tunnel key remote = the node's IP,
    std::uint64_t tunnel_id = 0;     //   tunnel key id (VXLAN: the VNI)

    static NodeRouteTarget via(std::string gateway) { return {.gateway = std::move(gateway)}; }
    static NodeRouteTarget tunnel(int ifindex, std::string remote, std::uint64_t id) {
        return {.tunnel_ifindex = ifindex, .tunnel_remote = std::move(remote), .tunnel_id = id};
    }
    std::string describe() const {
        if (!gateway.empty()) return "via " + gateway;
        return "encap ip id " + std::to_string(tunnel_id) + " dst " + tunnel_remote + " dev #" +
               std::to_string(tunnel_ifindex);
    }
};

// The routes themselves: install, remove, list (only ever ours).
class NodeRouteTable {
public:
    NodeRouteTable() : socket_(connect_route_socket()) {}

    // Installs or replaces the route to `pod_cidr`. A route to the same prefix
    // that is not ours (another protocol) is left alone and false returned:
    // someone else routes that prefix. A gateway route already in place is not
    // touched; a tunnel route is replaced (atomic in the kernel), since libnl
    // cannot read its key back to compare.
    bool install(const std::string& pod_cidr, const NodeRouteTarget& target, spdlog::logger& log) {
        NlAddr dst = parse_ipv4(pod_cidr);
        std::string foreign;
        bool in_place = false;
        const std::string prefix = to_string(dst.get());
        for (const auto& route : main_routes()) {
            if (route.dst != prefix) continue;
            if (route.protocol != kNodeRouteProtocol) {
                foreign = std::to_string(route.protocol);
                continue;
            }
            in_place = !target.gateway.empty() && route.gateway == canonical(target.gateway);
        }
        if (!foreign.empty()) {
            log.warn("a route to {} with protocol {} exists and is not Membrane's; leaving it", pod_cidr, foreign);
            return false;
        }
        if (in_place) {
            log.debug("route {} {} already in place", pod_cidr, target.describe());
            return true;
        }
        if (target.gateway.empty()) {
            add_tunnel_route(dst.get(), target);
        } else {
            add_gateway_route(dst.get(), target.gateway);
        }
        log.info("route {} {} (proto {})", pod_cidr, target.describe(), kNodeRouteProtocol);
        return true;
    }

    // Removes our route to `pod_cidr`, if there is one; never another's.
    void remove(const std::string& pod_cidr, spdlog::logger& log) {
        NlAddr dst = parse_ipv4(pod_cidr);
        // The protocol in the request makes the kernel match only our route;
        // scope "nowhere" matches gateway (universe) and tunnel (link) routes.
        Route route = route_to(dst.get(), RT_SCOPE_NOWHERE);
        const int err = rtnl_route_delete(socket_.get(), route.get(), 0);
        if (err == -NLE_OBJ_NOTFOUND) return;
        if (err < 0) throw NetlinkError("cannot remove route " + pod_cidr, err);
        log.info("removed route {}", pod_cidr);
    }

    // The prefixes our routes lead to now, canonical (see canonical()).
    std::set<std::string> installed() {
        std::set<std::string> prefixes;
        for (const auto& route : main_routes()) {
            if (route.protocol == kNodeRouteProtocol) prefixes.insert(route.dst);
        }
        return prefixes;
    }

    // "10.10.2.0/24" as the kernel prints it back; throws if not IPv4.
    static std::string canonical(const std::string& prefix) { return to_string(parse_ipv4(prefix).get()); }

private:
    static std::string to_string(nl_addr* addr) {
        std::array<char, 64> text{};
        return nl_addr2str(addr, text.data(), text.size());
    }

    // "a.b.c.d/len" of raw address bytes, as to_string(parse_ipv4(...)) prints it.
    static std::string to_string(const nlattr* address, unsigned prefixlen) {
        NlAddr addr(nl_addr_build(AF_INET, nla_data(address), 4));
        if (!addr) throw std::runtime_error("cannot allocate a netlink address");
        nl_addr_set_prefixlen(addr.get(), static_cast<int>(prefixlen));
        return to_string(addr.get());
    }

    // A main-table IPv4 unicast route of ours to `dst`, the fields a delete matches on.
    static Route route_to(nl_addr* dst, std::uint8_t scope) {
        Route route(rtnl_route_alloc());
        if (!route) throw std::runtime_error("cannot allocate a route object");
        rtnl_route_set_family(route.get(), AF_INET);
        rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
        rtnl_route_set_type(route.get(), RTN_UNICAST);
        rtnl_route_set_scope(route.get(), scope);
        rtnl_route_set_protocol(route.get(), kNodeRouteProtocol);
        if (const int err = rtnl_route_set_dst(route.get(), dst); err < 0) {
            throw NetlinkError("cannot set route destination " + to_string(dst), err);
        }
        return route;
    }

    void add_gateway_route(nl_addr* dst, const std::string& gateway_text) {
        NlAddr gateway = parse_ipv4(gateway_text);
        Route route = route_to(dst, RT_SCOPE_UNIVERSE);
        rtnl_nexthop* next_hop = rtnl_route_nh_alloc();
        if (!next_hop) throw std::runtime_error("cannot allocate a next hop");
        rtnl_route_nh_set_gateway(next_hop, gateway.get());
        rtnl_route_add_nexthop(route.get(), next_hop);  // the route owns it now
        if (const int err = rtnl_route_add(socket_.get(), route.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
            throw NetlinkError("cannot install route " + to_string(dst) + " via " + gateway_text, err);
        }
    }

    // libnl-route 3.7 knows only MPLS encapsulation, so the message is built
    // by hand: RTA_ENCAP_TYPE = LWTUNNEL_ENCAP_IP, RTA_ENCAP = {id, dst}.
    void add_tunnel_route(nl_addr* dst, const NodeRouteTarget& target) {
        NlAddr remote = parse_ipv4(target.tunnel_remote);
        const std::string what = "cannot install route " + to_string(dst) + " " + target.describe();
        struct MsgFree {
            void operator()(nl_msg* msg) const { nlmsg_free(msg); }
        };
        std::unique_ptr<nl_msg, MsgFree> msg(
            nlmsg_alloc_simple(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE));
        if (!msg) throw std::runtime_error(what + ": out of memory");
        rtmsg header{};
        header.rtm_family = AF_INET;
        header.rtm_dst_len = static_cast<unsigned char>(nl_addr_get_prefixlen(dst));
        header.rtm_table = RT_TABLE_MAIN;
        header.rtm_protocol = kNodeRouteProtocol;
        header.rtm_scope = RT_SCOPE_LINK;
        header.rtm_type = RTN_UNICAST;
        int err = nlmsg_append(msg.get(), &header, sizeof(header), NLMSG_ALIGNTO);
        if (err >= 0) err = nla_put(msg.get(), RTA_DST, 4, nl_addr_get_binary_addr(dst));
        if (err >= 0) err = nla_put_u32(msg.get(), RTA_OIF, static_cast<std::uint32_t>(target.tunnel_ifindex));
        if (err >= 0) err = nla_put_u16(msg.get(), RTA_ENCAP_TYPE, LWTUNNEL_ENCAP_IP);
        nlattr* encap = err >= 0 ? nla_nest_start(msg.get(), RTA_ENCAP) : nullptr;
        if (!encap) throw NetlinkError(what, err < 0 ? err : -NLE_NOMEM);
        // The kernel reads the id as a big-endian 64-bit tunnel id (VXLAN takes its low 24 bits).
        err = nla_put_u64(msg.get(), LWTUNNEL_IP_ID, htobe64(target.tunnel_id));
        if (err >= 0) err = nla_put(msg.get(), LWTUNNEL_IP_DST, 4, nl_addr_get_binary_addr(remote.get()));
        if (err >= 0) err = nla_nest_end(msg.get(), encap);
        if (err < 0) throw NetlinkError(what, err);
        err = nl_send_sync(socket_.get(), msg.release());  // frees the message, waits for the ack
        if (err < 0) throw NetlinkError(what, err);
    }

    // An IPv4 unicast route of the main table, as much as we compare.
    struct KernelRoute {
        std::string dst;      // canonical prefix
        std::uint8_t protocol = 0;
        std::string gateway;  // "" when it has none
    };

    // Every IPv4 unicast route of the main table. Dumped by hand: libnl-route's
    // cache refuses the whole dump once one route has an encapsulation it does
    // not know (LWTUNNEL_ENCAP_IP: ours).
    std::vector<KernelRoute> main_routes() {
        rtmsg request{};
        request.rtm_family = AF_INET;
        if (const int err = nl_send_simple(socket_.get(), RTM_GETROUTE, NLM_F_DUMP, &request, sizeof(request));
            err < 0) {
            throw NetlinkError("cannot list IPv4 routes", err);
        }
        struct CbPut {
            void operator()(nl_cb* cb) const { nl_cb_put(cb); }
        };
        std::unique_ptr<nl_cb, CbPut> callbacks(nl_cb_clone(nl_socket_get_cb(socket_.get())));
        if (!callbacks) throw std::runtime_error("cannot allocate netlink callbacks");
        std::vector<KernelRoute> routes;
        nl_cb_set(callbacks.get(), NL_CB_VALID, NL_CB_CUSTOM, &NodeRouteTable::collect_route, &routes);
        if (const int err = nl_recvmsgs(socket_.get(), callbacks.get()); err < 0) {
            throw NetlinkError("cannot list IPv4 routes", err);
        }
        return routes;
    }

    static int collect_route(nl_msg* msg, void* routes) {
        nlmsghdr* header = nlmsg_hdr(msg);
        if (header->nlmsg_type != RTM_NEWROUTE) return NL_OK;
        const auto* route = static_cast<const rtmsg*>(nlmsg_data(header));
        nlattr* attrs[RTA_MAX + 1] = {};
        if (nlmsg_parse(header, sizeof(rtmsg), attrs, RTA_MAX, nullptr) < 0) return NL_SKIP;
        const std::uint32_t table = attrs[RTA_TABLE] ? nla_get_u32(attrs[RTA_TABLE]) : route->rtm_table;
        if (route->rtm_family != AF_INET || table != RT_TABLE_MAIN || route->rtm_type != RTN_UNICAST) return NL_OK;
        if (!attrs[RTA_DST] || nla_len(attrs[RTA_DST]) != 4) return NL_OK;  // the default route: never ours
        KernelRoute found{.dst = to_string(attrs[RTA_DST], route->rtm_dst_len), .protocol = route->rtm_protocol};
        if (attrs[RTA_GATEWAY] && nla_len(attrs[RTA_GATEWAY]) == 4) found.gateway = to_string(attrs[RTA_GATEWAY], 32);
        static_cast<std::vector<KernelRoute>*>(routes)->push_back(std::move(found));
        return NL_OK;
    }

    NlSocket socket_;
};

// Keeps one route per remote node (NodeRouteTable) in step with the model:
// reconciles at construction (stale routes of nodes gone while the agent was
// down are removed), then follows NodeAdded/Updated/Removed. Destroying it
// ends the subscriptions and leaves the routes: a reload finds them in place
// and no packet misses its route.
class NodeRouter {
public:
    using TargetOf = std::function<NodeRouteTarget(const NodeInfo&)>;

    NodeRouter(Context& ctx, std::string owner, TargetOf target_of)
        : owner_(std::move(owner)), log_(ctx.log()), target_of_(std::move(target_of)) {
        reconcile(ctx.model().nodes());
        added_ = ctx.bus().subscribe<events::NodeAdded>(
            [this](const events::NodeAdded& event) { guarded([&] { route(event.node); }); });
        updated_ = ctx.bus().subscribe<events::NodeUpdated>(
            [this](const events::NodeUpdated& event) { guarded([&] { route(event.node); }); });
        removed_ = ctx.bus().subscribe<events::NodeRemoved>(
            [this](const events::NodeRemoved& event) { guarded([&] { unroute(event.node); }); });
    }

    // Node name -> the node as routed.
    const std::map<std::string, NodeInfo>& routed() const { return routed_; }

private:
    void reconcile(const std::vector<NodeInfo>& nodes) {
        std::set<std::string> wanted;
        for (const auto& node : nodes) {
            if (!node.local && !node.pod_cidr.empty()) wanted.insert(NodeRouteTable::canonical(node.pod_cidr));
        }
        for (const auto& prefix : table_.installed()) {
            if (!wanted.contains(prefix)) guarded([&] { table_.remove(prefix, log_); });
        }
        for (const auto& node : nodes) guarded([&] { route(node); });
    }

    void route(const NodeInfo& node) {
        if (node.local) {
            unroute(node);  // a node that became this one needs no route
            return;
        }
        if (node.ip.empty() || node.pod_cidr.empty()) {
            log_.warn("{}: node {} has no IP or pod CIDR; not routing it", owner_, node.name);
            return;
        }
        if (auto known = routed_.find(node.name); known != routed_.end()) {
            if (NodeRouteTable::canonical(known->second.pod_cidr) != NodeRouteTable::canonical(node.pod_cidr)) {
                table_.remove(known->second.pod_cidr, log_);
            }
            routed_.erase(known);
        }
        if (table_.install(node.pod_cidr, target_of_(node), log_)) routed_[node.name] = node;
    }

    void unroute(const NodeInfo& node) {
        if (auto known = routed_.find(node.name); known != routed_.end()) {
            table_.remove(known->second.pod_cidr, log_);
            routed_.erase(known);
        } else if (!node.local && !node.pod_cidr.empty()) {
            table_.remove(node.pod_cidr, log_);  // only ever ours (protocol match)
        }
    }

    // A node the kernel cannot route must not stop the others.
    template <class Action>
    void guarded(Action&& action) {
        try {
            action();
        } catch (const std::exception& error) {
            log_.error("{}: {}", owner_, error.what());
        }
    }

    std::string owner_;
    spdlog::logger& log_;
    TargetOf target_of_;
    NodeRouteTable table_;
    std::map<std::string, NodeInfo> routed_;
    Subscription added_;
    Subscription updated_;
    Subscription removed_;
};

}  // namespace membrane::netlink
