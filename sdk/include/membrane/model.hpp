// The read-only view of the agent's model that modules get. The kernel owns
// the model; modules learn of changes through events on the bus.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "membrane/api.hpp"

namespace membrane {

using Labels = std::map<std::string, std::string>;

// A node of the cluster (for now: [[nodes]] in membrane.toml).
struct NodeInfo {
    std::string name;
    std::string ip;        // the node's IPv4 on the underlay, e.g. "192.168.50.2"
    std::string pod_cidr;  // e.g. "10.10.2.0/24"
    bool local = false;    // this node
    bool operator==(const NodeInfo&) const = default;
};

// An endpoint's state. EndpointInfo::state holds its name: the field stays a
// std::string because EndpointInfo crosses the module boundary by value and
// its layout is fixed for every SDK 1.x (a module built against 1.0 reads the
// same struct); the enum and its two functions are header-only, so they need
// nothing from the agent and change no layout.
enum class EndpointState {
    ready,         // its map entries are written, the entry program attached
    disconnected,  // restored, but its host link is gone or not the recorded one
};

// The name used on D-Bus, by membranectl and in EndpointInfo::state.
constexpr std::string_view endpoint_state_name(EndpointState state) {
    switch (state) {
        case EndpointState::ready: return "ready";
        case EndpointState::disconnected: return "disconnected";
    }
    return "unknown";
}

// nullopt for a name this SDK does not know (e.g. a newer agent's).
constexpr std::optional<EndpointState> parse_endpoint_state(std::string_view name) {
    for (const auto state : {EndpointState::ready, EndpointState::disconnected}) {
        if (endpoint_state_name(state) == name) return state;
    }
    return std::nullopt;
}

// A pod (or any workload) on this node, wired by membrane-cni.
struct EndpointInfo {
    std::uint64_t id = 0;
    std::string container_id;
    std::string ifname;       // inside the pod (CNI_IFNAME)
    std::string netns;        // CNI_NETNS
    std::string host_ifname;  // host side of the veth
    std::uint32_t host_ifindex = 0;
    std::string ipv4;         // the pod's address, e.g. "10.10.1.5"
    std::string mac;          // pod side MAC, "aa:bb:cc:dd:ee:ff"
    Labels labels;
    std::uint32_t identity = 0;
    std::string state;  // endpoint_state_name(EndpointState): "ready" | "disconnected"
    bool operator==(const EndpointInfo&) const = default;
};

// SDK 1.4. A port an endpoint's containers declare by name (Kubernetes'
// containerPort with a name), as the CNI plugin was given them: what a
// policy's named port ("http") means for that endpoint.
struct ContainerPort {
    std::string name;            // IANA service name, e.g. "http"
    std::uint16_t port = 0;      // 1..65535
    std::uint8_t protocol = 6;   // IPPROTO_TCP (6), UDP (17) or SCTP (132)
    bool operator==(const ContainerPort&) const = default;
};

// SDK 1.5. A pod on another node, as that node publishes it through the
// cluster store: what this node's datapath knows of it (its /32 in the
// ipcache) and the named ports policy resolves against.
struct RemoteEndpointInfo {
    std::string ipv4;  // "10.10.2.7"
    std::string node;  // the node that publishes it
    std::string pod;   // "namespace/name" from its labels; "" when it has none
    std::uint32_t identity = 0;
    std::vector<ContainerPort> ports;  // its named container ports
    bool operator==(const RemoteEndpointInfo&) const = default;
};

// A security identity: one label set, one number.
struct IdentityInfo {
    std::uint32_t id = 0;
    Labels labels;
    bool reserved = false;      // host, world, unmanaged, remote-node
    std::uint32_t endpoints = 0;  // local endpoints that have it
};

// An applied object (kernel/objects: Namespace, later policies and
// services), as events::ObjectApplied carries it.
struct ObjectInfo {
    std::string kind;        // "Namespace"
    std::string namespace_;  // "" for a cluster-scoped kind
    std::string name;
    std::string document;    // JSON text, checked for its kind
    bool operator==(const ObjectInfo&) const = default;
};

class MEMBRANE_SDK_API Model {
public:
    virtual ~Model() = default;

    // This node's name (agent.node_name).
    virtual const std::string& node_name() const = 0;
    // Where the shared maps are pinned: <bpffs_root>/membrane/<node>/.
    virtual const std::filesystem::path& pin_dir() const = 0;

    // SDK 1.1: appended, so modules built against 1.0 still call the above.
    virtual std::vector<NodeInfo> nodes() const = 0;
    virtual std::vector<EndpointInfo> endpoints() const = 0;
    virtual std::optional<EndpointInfo> endpoint(std::uint64_t id) const = 0;
    virtual std::vector<IdentityInfo> identities() const = 0;

    // SDK 1.2. The MTU of the network between the nodes ([agent] mtu): the one
    // source of every MTU. A module that encapsulates sizes its device to this
    // minus its overhead, which is also what pods get (Context::declare_encapsulation).
    virtual std::uint32_t underlay_mtu() const = 0;

    // SDK 1.3. The applied objects of `kind` ("" = every kind), sorted by
    // namespace and name: what a module loaded after the start reads once,
    // then follows through events::ObjectApplied / ObjectDeleted. Not pure,
    // so a module's own test double of Model built for 1.2 still compiles.
    virtual std::vector<ObjectInfo> objects(const std::string& kind) const {
        (void)kind;
        return {};
    }

    // SDK 1.4. The named ports of a local endpoint (empty for none or an
    // unknown id). They are set when the endpoint is created and do not change.
    virtual std::vector<ContainerPort> endpoint_ports(std::uint64_t id) const {
        (void)id;
        return {};
    }

    // SDK 1.5. The other nodes' endpoints this node knows (from the cluster
    // store, or as last known while it is away), sorted by address; empty
    // without a store. Followed through events::RemoteEndpointUpdated/Removed.
    virtual std::vector<RemoteEndpointInfo> remote_endpoints() const { return {}; }
};

}  // namespace membrane
