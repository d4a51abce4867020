// The fixture of the model's datapath tests: a real Registry with the core
// object on a private bpffs, a private network namespace (the "agent's") in
// which the tests make veth pairs, and the model's parts on a state folder.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <net/if.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "bpf/registry.hpp"
#include "bpf/sandbox.hpp"
#include "bus/event_bus.hpp"
#include "config/agent_config.hpp"
#include "membrane/embed.hpp"
#include "membrane/events.hpp"
#include "model/datapath_maps.hpp"
#include "model/endpoints.hpp"
#include "model/host_scope_ipam.hpp"
#include "model/local_identity_allocator.hpp"
#include "model/link_info.hpp"
#include "model/node_table.hpp"
#include "model/registry_datapath.hpp"
#include "support/quiet_logger.hpp"
#include "support/state_folder.hpp"

MEMBRANE_EMBEDDED_BPF(membrane_core_bpf)

namespace membrane::kernel::test {

// A network namespace of its own; veth pairs are made inside it, so the
// host's interfaces are never touched. Removed (with its links) at the end.
class AgentNetns {
public:
    AgentNetns() : name_("mbrm-" + std::to_string(::getpid()) + "-" + std::to_string(next_sandbox_number())) {
        must("ip netns add " + name_);
        must("ip -n " + name_ + " link set lo up");
    }
    ~AgentNetns() { run("ip netns del " + name_); }
    AgentNetns(const AgentNetns&) = delete;
    AgentNetns& operator=(const AgentNetns&) = delete;

    const std::string& name() const { return name_; }
    void add_veth(const std::string& host, const std::string& pod) {
        must("ip -n " + name_ + " link add " + host + " type veth peer name " + pod);
        must("ip -n " + name_ + " link set " + host + " up");
        must("ip -n " + name_ + " link set " + pod + " up");
    }
    void remove_link(const std::string& link) { must("ip -n " + name_ + " link del " + link); }
    // Moves `link` into the namespace `other` (as CNI moves a pod's side).
    void move_link(const std::string& link, const std::string& other) {
        must("ip -n " + name_ + " link set " + link + " netns " + other);
        must("ip -n " + other + " link set " + link + " up");
    }
    std::string link_mac(const std::string& link) {
        std::string out;
        must("ip -n " + name_ + " -br link show " + link + " | awk '{print $3}'", &out);
        return out.substr(0, out.find('\n'));
    }
    std::string ingress_filters(const std::string& link) {
        std::string out;
        run("ip netns exec " + name_ + " tc filter show dev " + link + " ingress", &out);
        return out;
    }

private:
    void must(const std::string& command, std::string* out = nullptr) {
        std::string text;
        if (run(command, &text) != 0) throw std::runtime_error(command + ": " + text);
        if (out) *out = text;
    }
    std::string name_;
};

// The datapath with a switch to make the attach step fail.
class SwitchableDatapath final : public EndpointDatapath {
public:
    explicit SwitchableDatapath(Registry& registry) : real_(registry) {}
    int endpoints_map() override { return real_.endpoints_map(); }
    int ipcache_map() override { return real_.ipcache_map(); }
    void attach_endpoint(const std::string& host_ifname) override {
        if (fail_attach) throw BpfError("attach refused by the test");
        real_.attach_endpoint(host_ifname);
    }
    void detach_endpoint(const std::string& host_ifname) override { real_.detach_endpoint(host_ifname); }
    bool fail_attach = false;

private:
    RegistryDatapath real_;
};

class DatapathTest : public ::testing::Test {
protected:
    DatapathTest() { start(); }
    ~DatapathTest() override { stop(); }

    // An agent start: registry, model parts, restore (in the agent's netns).
    void start() {
        registry = std::make_unique<Registry>(sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger);
        registry->open_core(membrane_core_bpf());
        datapath = std::make_unique<SwitchableDatapath>(*registry);
        identities = std::make_unique<LocalIdentityAllocator>(io, state / "identities.json", exclude_labels);
        ipam = std::make_unique<HostScopeIpam>(parse_ipv4_cidr("10.10.1.0/24"), state / "ipam.json", quiet_logger());
        ipam->restore();
        nodes = std::make_unique<NodeTable>(*datapath, bus, quiet_logger());
        manager = std::make_unique<EndpointManager>(EndpointManagerParts{*datapath, *identities, *ipam, *nodes, bus},
                                                    state / "endpoints.json", [this] { return mtu; }, quiet_logger());
        EnterNetns inside(netns.name());
        manager->restore();
    }
    // An agent stop: everything closed, pins and filters stay.
    void stop() {
        manager.reset();
        nodes.reset();
        ipam.reset();
        identities.reset();
        datapath.reset();
        registry.reset();
    }
    void deliver_events() {
        io.restart();
        io.poll();
    }

    std::optional<mbr_endpoint_value> endpoint_entry(const std::string& ip) const {
        const mbr_endpoint_key key{htonl(*parse_ipv4(ip))};
        mbr_endpoint_value value{};
        if (bpf_map_lookup_elem(registry->core_map_fd(MBR_MAP_ENDPOINTS), &key, &value) != 0) return std::nullopt;
        return value;
    }
    // Exact-prefix read of the ipcache.
    std::optional<mbr_ipcache_value> ipcache_entry(const std::string& cidr) const {
        const auto prefix = *parse_ipv4_cidr(cidr);
        for (const auto& present : ipcache_prefixes(registry->core_map_fd(MBR_MAP_IPCACHE))) {
            if (present == prefix) {
                const mbr_ipcache_key key{prefix.prefix_len, htonl(prefix.network)};
                mbr_ipcache_value value{};
                if (bpf_map_lookup_elem(registry->core_map_fd(MBR_MAP_IPCACHE), &key, &value) == 0) return value;
            }
        }
        return std::nullopt;
    }
    std::size_t endpoint_entries() const { return endpoint_entry_addresses(registry->core_map_fd(MBR_MAP_ENDPOINTS)).size(); }
    std::size_t ipcache_entries() const { return ipcache_prefixes(registry->core_map_fd(MBR_MAP_IPCACHE)).size(); }

    BpffsSandbox sandbox;
    CapturedLog log;
    StateFolder state;
    AgentNetns netns;
    boost::asio::io_context io;
    EventBus bus{io};
    std::uint32_t mtu = 1450;
    std::vector<std::string> exclude_labels = IdentitySettings{}.exclude_labels;  // [identity] at the next start()
    std::unique_ptr<Registry> registry;
    std::unique_ptr<SwitchableDatapath> datapath;
    std::unique_ptr<LocalIdentityAllocator> identities;
    std::unique_ptr<HostScopeIpam> ipam;
    std::unique_ptr<NodeTable> nodes;
    std::unique_ptr<EndpointManager> manager;
};

}  // namespace membrane::kernel::test
