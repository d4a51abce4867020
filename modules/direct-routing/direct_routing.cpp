// direct-routing: pods on different nodes reach each other without
// encapsulation. For every other node the module installs the kernel route
// "<pod CIDR> via <node IP>" (netlink, kept in step with node events), and it
// fills the routing stage with a program that forwards pod traffic for those
// CIDRs with bpf_fib_lookup + bpf_redirect_neigh. The receiving node's
// device entry program (agent.devices) delivers it.
//
// [module.direct-routing] keys (all optional):
//   enable_forwarding = true  # set net.ipv4.ip_forward=1 in the agent's netns
//                             # (bpf_fib_lookup refuses to route otherwise)
#include <fstream>
#include <set>
#include <vector>
#include <map>
#include <optional>
#include <string>

#include <membrane/membrane.hpp>

#include "node_routes.hpp"

MEMBRANE_EMBEDDED_BPF(direct_routing_bpf)

namespace direct_routing {
namespace {

constexpr const char* kStageProgram = "direct_routing_stage";
constexpr const char* kIpForward = "/proc/sys/net/ipv4/ip_forward";

// bpf_fib_lookup answers FWD_DISABLED on a device without forwarding; the
// global switch also sets the default that new pod veths inherit.
void enable_ipv4_forwarding(spdlog::logger& log) {
    std::string current;
    std::ifstream(kIpForward) >> current;
    if (current == "1") return;
    std::ofstream out(kIpForward);
    out << "1\n";
    out.flush();
    if (!out) throw std::runtime_error(std::string("cannot enable IPv4 forwarding (") + kIpForward + ")");
    log.info("direct-routing: enabled IPv4 forwarding (net.ipv4.ip_forward=1)");
}

class DirectRouting final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        membrane::ConfigReader read(ctx.config(), "module." + ctx.module_name());
        const bool enable_forwarding = read.get<bool>("enable_forwarding", true);
        read.finish();

        log_ = &ctx.log();
        if (enable_forwarding) enable_ipv4_forwarding(ctx.log());
        routes_.emplace(ctx.log());
        reconcile(ctx.model().nodes());

        added_ = ctx.bus().subscribe<membrane::events::NodeAdded>(
            [this](const membrane::events::NodeAdded& event) { guarded([&] { route(event.node); }); });
        updated_ = ctx.bus().subscribe<membrane::events::NodeUpdated>(
            [this](const membrane::events::NodeUpdated& event) { guarded([&] { route(event.node); }); });
        removed_ = ctx.bus().subscribe<membrane::events::NodeRemoved>(
            [this](const membrane::events::NodeRemoved& event) { guarded([&] { unroute(event.node); }); });

        // Routes first, then the program that relies on them.
        membrane::BpfObject& object = ctx.bpf().load({.name = "direct-routing", .elf = direct_routing_bpf()});
        ctx.bpf().attach_stage(MBR_STAGE_ROUTING, object, kStageProgram);

        ctx.add_method("Routes", [this](const std::string&) { return routes_json(); });
        ctx.log().info("direct-routing: {} node route(s); pod traffic for other nodes is forwarded by FIB lookup",
                       routed_.size());
    }

    void stop() override {
        // The kernel routes stay: a reload finds them in place (no packet
        // misses its route), and the next start reconciles them.
        added_.reset();
        updated_.reset();
        removed_.reset();
        routes_.reset();
    }

private:
    // Our routes become exactly the remote nodes' pod CIDRs: stale ones (a
    // node gone while the agent was down) are removed, the rest (re)installed.
    void reconcile(const std::vector<membrane::NodeInfo>& nodes) {
        std::set<std::string> wanted;
        for (const auto& node : nodes) {
            if (!node.local && !node.pod_cidr.empty()) wanted.insert(NodeRoutes::canonical(node.pod_cidr));
        }
        for (const auto& prefix : routes_->installed()) {
            if (!wanted.contains(prefix)) routes_->remove(prefix);
        }
        for (const auto& node : nodes) guarded([&] { route(node); });
    }

    void route(const membrane::NodeInfo& node) {
        if (node.local) {
            unroute(node);  // a node that became this one needs no route
            return;
        }
        if (node.ip.empty() || node.pod_cidr.empty()) {
            log_->warn("direct-routing: node {} has no IP or pod CIDR; not routing it", node.name);
            return;
        }
        if (auto known = routed_.find(node.name); known != routed_.end()) {
            if (NodeRoutes::canonical(known->second.pod_cidr) != NodeRoutes::canonical(node.pod_cidr)) {
                routes_->remove(known->second.pod_cidr);
            }
            routed_.erase(known);
        }
        if (routes_->install(node.pod_cidr, node.ip)) routed_[node.name] = node;
    }

    void unroute(const membrane::NodeInfo& node) {
        if (auto known = routed_.find(node.name); known != routed_.end()) {
            routes_->remove(known->second.pod_cidr);
            routed_.erase(known);
        } else if (!node.local && !node.pod_cidr.empty()) {
            routes_->remove(node.pod_cidr);  // only ever ours (protocol match)
        }
    }

    // A node the kernel cannot route must not stop the others.
    template <class Action>
    void guarded(Action&& action) {
        try {
            action();
        } catch (const std::exception& error) {
            log_->error("direct-routing: {}", error.what());
        }
    }

    std::string routes_json() const {
        std::string out = "[";
        for (const auto& [name, node] : routed_) {
            if (out.size() > 1) out += ", ";
            out += "{\"node\": \"" + name + "\", \"pod_cidr\": \"" + node.pod_cidr + "\", \"via\": \"" + node.ip + "\"}";
        }
        return out + "]";
    }

    spdlog::logger* log_ = nullptr;
    std::optional<NodeRoutes> routes_;
    std::map<std::string, membrane::NodeInfo> routed_;  // node name -> what we routed
    membrane::Subscription added_;
    membrane::Subscription updated_;
    membrane::Subscription removed_;
};

}  // namespace
}  // namespace direct_routing

MEMBRANE_MODULE(direct_routing::DirectRouting, "direct-routing")
