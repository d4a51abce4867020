// Who a trace's packet is from and for, as this node's model knows them: a
// pod of this node, another node's pod, a node, or an address of the world.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

struct TracePeer {
    enum class Kind { local_pod, remote_pod, this_node, other_node, world };
    Kind kind = Kind::world;
    std::string ip;
    std::uint32_t identity = 0;  // as the model has it (MBR_IDENTITY_* for nodes and the world)
    std::string namespace_;      // pods
    std::string pod;
    std::string node;                                 // remote pods and nodes: the node's name
    std::optional<membrane::EndpointInfo> endpoint;  // local pods
};

const char* trace_peer_kind_name(TracePeer::Kind kind);  // "pod-of-this-node", "world", ...

struct TracePeerModel {
    std::vector<membrane::EndpointInfo> endpoints;  // this node's
    std::vector<membrane::RemoteEndpointInfo> remote_endpoints;
    std::vector<membrane::NodeInfo> nodes;
    std::vector<membrane::IdentityInfo> identities;  // another node's pods' labels
};

// `text`: "namespace/pod", an IPv4 address, or labels "key=value,..." (a pod
// that has them all, as a policy's matchLabels reads them: "app" also finds
// "k8s:app"; this node's pods first, then the others', the first by
// address). Throws std::invalid_argument naming what is wrong ("no pod
// shop/web on any node", "10.1.2 is not ...").
TracePeer resolve_trace_peer(const std::string& text, const TracePeerModel& model);

}  // namespace membrane::kernel
