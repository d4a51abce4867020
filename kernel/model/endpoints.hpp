// The endpoint manager: the kernel's side of membrane-cni. It validates a
// request, gives the pod an identity from its labels, writes the endpoints
// map and the ipcache, attaches the from-endpoint entry program to the pod's
// host-side veth, records the endpoint (state_dir, atomic) and publishes the
// event. An operation is all or nothing: a failing step undoes the earlier
// ones and the ControlError names the step.
//
// Also the face of the whole model to the control plane (EndpointControl):
// addresses (through the IpamProvider), identities and nodes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <spdlog/logger.h>

#include "agent/agent_control.hpp"
#include "bus/event_bus.hpp"
#include "config/ipv4.hpp"
#include "model/datapath.hpp"
#include "model/identity_allocator.hpp"
#include "model/ipam.hpp"
#include "model/node_table.hpp"

namespace membrane::kernel {

struct EndpointManagerParts {
    EndpointDatapath& datapath;
    IdentityAllocator& identities;
    IpamProvider& ipam;
    const NodeTable& nodes;
    EventBus& bus;
};

class EndpointManager final : public EndpointControl {
public:
    // `state_file`: endpoints.json. `pod_mtu`: the MTU a lease carries now
    // (agent MTU minus the largest encapsulation a running module declared).
    EndpointManager(EndpointManagerParts parts, std::filesystem::path state_file,
                    std::function<std::uint32_t()> pod_mtu, std::shared_ptr<spdlog::logger> log);

    // Agent start: reloads the recorded endpoints, takes their identities
    // again, rewrites their map entries and re-attaches the entry program if
    // the host link is still the one it was created on (same name, same
    // ifindex, its veth peer in the recorded netns); otherwise the endpoint
    // is kept as EndpointState::disconnected, the reason logged (no map entries; a later
    // DEL removes it). Endpoints-map
    // entries no endpoint accounts for are removed. Throws StateError for an
    // unreadable record.
    void restore();
    // The ipcache prefixes the endpoints account for (start-up pruning keeps them).
    std::set<Ipv4Cidr> ipcache_prefixes() const;

    AddressLease allocate_address(const std::string& container_id, const std::string& ifname) override;
    void release_address(const std::string& container_id, const std::string& ifname) override;
    EndpointInfo create_endpoint(const EndpointRequest& request) override;
    void delete_endpoint(const std::string& container_id, const std::string& ifname) override;
    std::vector<EndpointInfo> list_endpoints() const override;
    // The named container ports the endpoint was created with (Model::endpoint_ports).
    std::vector<ContainerPort> endpoint_ports(std::uint64_t id) const;
    EndpointInfo get_endpoint(std::uint64_t id) const override;
    EndpointInfo find_endpoint(const std::string& container_id, const std::string& ifname) const override;
    EndpointInfo set_endpoint_labels(std::uint64_t id, const Labels& labels) override;
    void prepare_identity(const Labels& labels, std::function<void(std::optional<IdentityProblem>)> ready) override;
    std::vector<IdentityInfo> list_identities() const override;
    std::vector<NodeInfo> list_nodes() const override;

private:
    EndpointInfo create_locked(const EndpointRequest& request);
    // Writes the endpoints-map and ipcache entries of a ready endpoint.
    void write_entries(const EndpointInfo& endpoint);
    void remove_entries(const EndpointInfo& endpoint);
    void persist_locked();
    const EndpointInfo* find_locked(const std::string& container_id, const std::string& ifname) const;

    EndpointManagerParts parts_;
    std::filesystem::path state_file_;
    std::function<std::uint32_t()> pod_mtu_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, EndpointInfo> endpoints_;
    std::map<std::uint64_t, std::vector<ContainerPort>> ports_;  // endpoints with named ports only
    std::uint64_t next_id_ = 1;
};

// Checks of request fields (exposed for tests): the CNI container id
// (1..256 of letters, digits, '_', '.', '-').
bool valid_container_id(const std::string& id);

}  // namespace membrane::kernel
