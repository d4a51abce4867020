#include "trace/trace_peer.hpp"

#include <stdexcept>

#include "config/ipv4.hpp"
#include "membrane/policy.hpp"

extern "C" {
#include "membrane/contract.h"
}

namespace membrane::kernel {
namespace {

std::string label(const membrane::Labels& labels, std::string_view key) {
    const auto found = labels.find(std::string(key));
    return found == labels.end() ? std::string() : found->second;
}

TracePeer local_pod(const membrane::EndpointInfo& endpoint) {
    return TracePeer{.kind = TracePeer::Kind::local_pod,
                     .ip = endpoint.ipv4,
                     .identity = endpoint.identity,
                     .namespace_ = label(endpoint.labels, policy::kPodNamespaceLabel),
                     .pod = label(endpoint.labels, policy::kPodNameLabel),
                     .node = {},
                     .endpoint = endpoint};
}

TracePeer remote_pod(const membrane::RemoteEndpointInfo& remote) {
    TracePeer peer{.kind = TracePeer::Kind::remote_pod, .ip = remote.ipv4, .identity = remote.identity, .node = remote.node};
    if (const auto slash = remote.pod.find('/'); slash != std::string::npos) {
        peer.namespace_ = remote.pod.substr(0, slash);
        peer.pod = remote.pod.substr(slash + 1);
    }
    return peer;
}

}  // namespace

const char* trace_peer_kind_name(TracePeer::Kind kind) {
    switch (kind) {
        case TracePeer::Kind::local_pod: return "pod-of-this-node";
        case TracePeer::Kind::remote_pod: return "pod-of-another-node";
        case TracePeer::Kind::this_node: return "this-node";
        case TracePeer::Kind::other_node: return "another-node";
        case TracePeer::Kind::world: return "world";
    }
    return "world";
}

namespace {

// "app=web,tier=db" as a selector; throws naming a part that is no KEY=VALUE.
policy::LabelSelector label_selector(const std::string& text) {
    policy::LabelSelector selector;
    std::size_t from = 0;
    while (from <= text.size()) {
        const auto comma = text.find(',', from);
        const std::string part = text.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
        const auto equals = part.find('=');
        if (equals == std::string::npos || equals == 0)
            throw std::invalid_argument("\"" + part + "\" in \"" + text + "\" is not KEY=VALUE");
        selector.match_labels[part.substr(0, equals)] = part.substr(equals + 1);
        if (comma == std::string::npos) break;
        from = comma + 1;
    }
    return selector;
}

TracePeer pod_with_labels(const std::string& text, const TracePeerModel& model) {
    const auto selector = label_selector(text);
    const membrane::EndpointInfo* local = nullptr;
    for (const auto& endpoint : model.endpoints) {
        if (policy::matches(selector, endpoint.labels) && (!local || endpoint.ipv4 < local->ipv4)) local = &endpoint;
    }
    if (local) return local_pod(*local);
    const membrane::RemoteEndpointInfo* remote = nullptr;
    for (const auto& candidate : model.remote_endpoints) {
        for (const auto& identity : model.identities) {
            if (identity.id != candidate.identity || !policy::matches(selector, identity.labels)) continue;
            if (!remote || candidate.ipv4 < remote->ipv4) remote = &candidate;
        }
    }
    if (remote) return remote_pod(*remote);
    throw std::invalid_argument("no pod this node knows has the labels " + text);
}

}  // namespace

TracePeer resolve_trace_peer(const std::string& text, const TracePeerModel& model) {
    if (text.empty()) throw std::invalid_argument("a pod (namespace/name), an IPv4 address or labels (k=v,...) are needed");
    if (text.find('=') != std::string::npos) return pod_with_labels(text, model);
    if (const auto address = parse_ipv4(text)) {
        const std::string ip = format_ipv4(*address);
        for (const auto& endpoint : model.endpoints)
            if (endpoint.ipv4 == ip) return local_pod(endpoint);
        for (const auto& remote : model.remote_endpoints)
            if (remote.ipv4 == ip) return remote_pod(remote);
        for (const auto& node : model.nodes) {
            if (node.ip != ip) continue;
            return TracePeer{.kind = node.local ? TracePeer::Kind::this_node : TracePeer::Kind::other_node,
                             .ip = ip,
                             .identity = node.local ? MBR_IDENTITY_HOST : MBR_IDENTITY_REMOTE_NODE,
                             .node = node.name};
        }
        return TracePeer{.kind = TracePeer::Kind::world, .ip = ip, .identity = MBR_IDENTITY_WORLD};
    }
    const auto slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
        text.find('/', slash + 1) != std::string::npos) {
        throw std::invalid_argument("\"" + text + "\" is neither a pod (namespace/name) nor an IPv4 address");
    }
    const std::string ns = text.substr(0, slash);
    const std::string name = text.substr(slash + 1);
    for (const auto& endpoint : model.endpoints) {
        if (label(endpoint.labels, policy::kPodNamespaceLabel) == ns && label(endpoint.labels, policy::kPodNameLabel) == name)
            return local_pod(endpoint);
    }
    for (const auto& remote : model.remote_endpoints)
        if (remote.pod == text) return remote_pod(remote);
    throw std::invalid_argument("no pod " + text + " on this node or any other this node knows");
}

}  // namespace membrane::kernel
