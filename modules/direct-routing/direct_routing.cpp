// direct-routing: pods on different nodes reach each other without
// encapsulation. For every other node the module installs the kernel route
// "<pod CIDR> via <node IP>" (the SDK's NodeRouter, kept in step with node
// events), and it fills the routing stage with a program that forwards pod
// traffic for those CIDRs with bpf_fib_lookup + bpf_redirect_neigh. The receiving node's
// device entry program (agent.devices) delivers it.
//
// [module.direct-routing] keys (all optional):
//   enable_forwarding = true  # set net.ipv4.ip_forward=1 in the agent's netns
//                             # (bpf_fib_lookup refuses to route otherwise)
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <membrane/membrane.hpp>
#include <membrane/node_routes.hpp>

MEMBRANE_EMBEDDED_BPF(direct_routing_bpf)

namespace direct_routing {
namespace {

constexpr const char* kStageProgram = "direct_routing_stage";
class DirectRouting final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        membrane::ConfigReader read(ctx.config(), "module." + ctx.module_name());
        const bool enable_forwarding = read.get<bool>("enable_forwarding", true);
        read.finish();

        if (enable_forwarding) membrane::netlink::enable_ipv4_forwarding(ctx.log());
        // Routes first, then the program that relies on them.
        router_.emplace(ctx, "direct-routing", [](const membrane::NodeInfo& node) {
            return membrane::netlink::NodeRouteTarget::via(node.ip);
        });
        membrane::BpfObject& object = ctx.bpf().load({.name = "direct-routing", .elf = direct_routing_bpf()});
        ctx.bpf().attach_stage(MBR_STAGE_ROUTING, object, kStageProgram);

        ctx.add_method("Routes", [this](const std::string&) { return routes_json(); });
        ctx.log().info("direct-routing: {} node route(s); pod traffic for other nodes is forwarded by FIB lookup",
                       router_->routed().size());
    }

    // The kernel routes stay (see NodeRouter): a reload finds them in place.
    void stop() override { router_.reset(); }

private:
    std::string routes_json() const {
        nlohmann::json routes = nlohmann::json::array();
        for (const auto& [name, node] : router_->routed()) {
            routes.push_back({{"node", name}, {"pod_cidr", node.pod_cidr}, {"via", node.ip}});
        }
        return routes.dump();
    }

    std::optional<membrane::netlink::NodeRouter> router_;
};

}  // namespace
}  // namespace direct_routing

MEMBRANE_MODULE(direct_routing::DirectRouting, "direct-routing")
