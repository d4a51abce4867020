// routing-vxlan: pods on different nodes reach each other through a VXLAN
// overlay. The routing stage encapsulates pod traffic for another node's pod
// CIDR in BPF and sends it out of the underlay (send side); the core's
// mbr_from_netdev decapsulates what arrives for a local pod on the UDP port
// this module writes to mbr_overlay_v1 (receive side). The module also owns a
// VXLAN device in collect-metadata mode, for everything those paths leave to
// the kernel, and puts the core's mbr_from_overlay on it. The
// node's own stack reaches remote pods through kernel routes into the device
// ("<pod CIDR> encap ip id 4 dst <node IP> dev <device>", the SDK's
// NodeRouter): the lightweight tunnel sets the key, the VNI says
// "remote node" (MBR_IDENTITY_REMOTE_NODE).
//
// [module.routing-vxlan] keys (all optional):
//   device          = "mbr_vxlan"  # name of the VXLAN device
//   port            = 8472         # UDP port of the overlay (Linux's VXLAN default)
//   enable_forwarding = true       # net.ipv4.ip_forward=1: the stack answers (or
//                                  # fragments) what the stage hands it as oversized
// The device's MTU is [agent] mtu - 50, the same as the pods' (one source).
#include <cstdint>
#include <optional>
#include <string>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <membrane/membrane.hpp>
#include <membrane/names.hpp>
#include <membrane/node_routes.hpp>

#include "bpf/routing_vxlan_config.h"
#include "vxlan_device.hpp"

MEMBRANE_EMBEDDED_BPF(routing_vxlan_bpf)

namespace routing_vxlan {
namespace {

// Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8).
constexpr std::uint32_t kVxlanOverhead = 50;
constexpr const char* kStageProgram = "routing_vxlan_stage";
constexpr const char* kConfigMap = "routing_vxlan_cfg";

struct Settings {
    std::string device;
    std::uint16_t port = 0;
    bool enable_forwarding = true;
};

Settings read_settings(const membrane::Context& ctx) {
    membrane::ConfigReader read(ctx.config(), "module." + ctx.module_name());
    Settings settings;
    settings.device = read.get<std::string>("device", "mbr_vxlan");
    settings.port = read.get<std::uint16_t>("port", 8472);
    settings.enable_forwarding = read.get<bool>("enable_forwarding", true);
    if (read.optional<std::string>("underlay_device")) {
        throw read.error("underlay_device",
                         "is no longer read: the overlay's MTU is [agent] mtu (the underlay's MTU) minus 50, "
                         "the same as the pods'; remove the key and set [agent] mtu");
    }
    read.finish();
    if (const std::string why = membrane::interface_name_problem(settings.device); !why.empty()) {
        throw read.error("device", "must be a Linux interface name: " + why);
    }
    if (settings.port == 0) throw read.error("port", "must be a UDP port (1 to 65535)");
    return settings;
}

mbr_overlay_config read_overlay(int map_fd) {
    const std::uint32_t key = 0;
    mbr_overlay_config overlay{};
    if (bpf_map_lookup_elem(map_fd, &key, &overlay) != 0) throw membrane::BpfError(std::string("cannot read ") + MBR_MAP_OVERLAY);
    return overlay;
}

void write_overlay(int map_fd, const mbr_overlay_config& overlay) {
    const std::uint32_t key = 0;
    if (bpf_map_update_elem(map_fd, &key, &overlay, BPF_ANY) != 0) {
        throw membrane::BpfError(std::string("cannot write ") + MBR_MAP_OVERLAY);
    }
}

// Writes the overlay's port with a writer number no earlier generation holds
// (the one after the pin's, never 0) and returns that number.
std::uint16_t claim_overlay(int map_fd, std::uint16_t port) {
    std::uint16_t writer = read_overlay(map_fd).writer + 1;
    if (writer == 0) writer = 1;
    write_overlay(map_fd, {.vxlan_port = htons(port), .writer = writer});
    return writer;
}

// Clears the port if `writer` is still the one that wrote it; true if it did.
bool release_overlay(int map_fd, std::uint16_t writer) {
    if (read_overlay(map_fd).writer != writer) return false;
    write_overlay(map_fd, {.vxlan_port = 0, .writer = 0});
    return true;
}

class RoutingVxlan final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        settings_ = read_settings(ctx);
        const std::uint32_t mtu = device_mtu(ctx);

        // The device stays across stop(): a reload adopts it, so traffic
        // keeps flowing; see README.md for how it is removed.
        const int ifindex = ensure_vxlan_device({.name = settings_.device, .port = settings_.port, .mtu = mtu}, ctx.log());
        ctx.declare_encapsulation(kVxlanOverhead);
        if (settings_.enable_forwarding) membrane::netlink::enable_ipv4_forwarding(ctx.log());

        membrane::BpfObject& object = ctx.bpf().load({.name = "routing-vxlan", .elf = routing_vxlan_bpf()});
        // Before the stage is filled, so the program never sees an empty config.
        const std::uint32_t key = 0;
        const routing_vxlan_config config{.ifindex = static_cast<std::uint32_t>(ifindex)};
        if (bpf_map_update_elem(object.map_fd(kConfigMap), &key, &config, BPF_ANY) != 0) {
            throw membrane::BpfError(std::string("cannot write ") + kConfigMap);
        }

        // Receive side first, then send: a packet sent is always one that can arrive.
        ctx.bpf().attach_entry(settings_.device, MBR_ENTRY_FROM_OVERLAY);
        ctx.bpf().attach_stage(MBR_STAGE_ROUTING, object, kStageProgram);
        // Last, the node's own traffic: its replies come back through the receive side.
        router_.emplace(ctx, "routing-vxlan", [ifindex](const membrane::NodeInfo& node) {
            return membrane::netlink::NodeRouteTarget::tunnel(ifindex, node.ip, MBR_IDENTITY_REMOTE_NODE);
        });
        // [agent] mtu changed on SIGHUP: the device follows, as new pods do.
        config_reloaded_ = ctx.bus().subscribe<membrane::events::ConfigReloaded>(
            [this, &ctx](const membrane::events::ConfigReloaded&) { follow_underlay_mtu(ctx); });

        // Last, so a start that failed never opened it: the port on which the
        // core decapsulates the overlay for local pods, and the stage
        // encapsulates itself (membrane/overlay.h).
        log_ = &ctx.log();
        overlay_map_fd_ = object.map_fd(MBR_MAP_OVERLAY);
        overlay_writer_ = claim_overlay(overlay_map_fd_, settings_.port);
        if (!settings_.enable_forwarding) {
            ctx.log().warn("routing-vxlan: enable_forwarding = false: the FIB answers no lookup for the pods' "
                           "packets, so they all leave through {}, not the BPF encapsulation", settings_.device);
        }

        status_ = {{"device", settings_.device}, {"ifindex", ifindex}, {"port", settings_.port}, {"mtu", mtu}};
        ctx.add_method("Status", [this](const std::string&) { return status_json(); });
        ctx.log().info("routing-vxlan: pod traffic for other nodes leaves through {} (ifindex {}, UDP {}, MTU {})",
                       settings_.device, ifindex, settings_.port, mtu);
    }

    // The node routes stay (see NodeRouter): a reload finds them in place.
    // The overlay's port is closed unless a newer generation claimed it (a
    // reload starts the new one first): an unloaded module must not leave
    // the core decapsulating, with identities any underlay host could claim.
    void stop() override {
        config_reloaded_.reset();
        router_.reset();
        if (overlay_writer_ == 0) return;
        try {
            if (release_overlay(overlay_map_fd_, overlay_writer_)) {
                log_->info("routing-vxlan: overlay port {} closed: what arrives on it takes the VXLAN device",
                           settings_.port);
            }
        } catch (const std::exception& error) {
            // The port stays open, as after a crash; the next generation or agent rewrites it.
            log_->warn("routing-vxlan: cannot close the overlay port: {}", error.what());
        }
    }

private:
    // [agent] mtu minus the encapsulation: the same MTU pods get.
    static std::uint32_t device_mtu(const membrane::Context& ctx) {
        const std::uint32_t underlay_mtu = ctx.model().underlay_mtu();
        if (underlay_mtu <= kVxlanOverhead + 68) {  // 68: the smallest MTU IPv4 allows
            throw std::runtime_error("[agent] mtu " + std::to_string(underlay_mtu) + " leaves no room for VXLAN");
        }
        return underlay_mtu - kVxlanOverhead;
    }

    void follow_underlay_mtu(membrane::Context& ctx) {
        try {
            const std::uint32_t mtu = device_mtu(ctx);
            if (status_["mtu"] == mtu) return;
            ensure_vxlan_device({.name = settings_.device, .port = settings_.port, .mtu = mtu}, ctx.log());
            status_["mtu"] = mtu;
        } catch (const std::exception& error) {
            ctx.log().error("routing-vxlan: cannot follow [agent] mtu: {}", error.what());
        }
    }

    std::string status_json() const {
        nlohmann::json status = status_;
        status["node_routes"] = nlohmann::json::array();
        for (const auto& [name, node] : router_->routed()) {
            status["node_routes"].push_back({{"node", name}, {"pod_cidr", node.pod_cidr}, {"via", node.ip}});
        }
        return status.dump();
    }

    Settings settings_;
    spdlog::logger* log_ = nullptr;
    int overlay_map_fd_ = -1;
    std::uint16_t overlay_writer_ = 0;  // 0: never claimed
    nlohmann::json status_;
    std::optional<membrane::netlink::NodeRouter> router_;
    membrane::Subscription config_reloaded_;
};

}  // namespace
}  // namespace routing_vxlan

MEMBRANE_MODULE(routing_vxlan::RoutingVxlan, "routing-vxlan")
