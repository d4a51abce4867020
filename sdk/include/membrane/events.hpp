// Events the kernel publishes. Modules may publish their own types too; a
// topic is "<area>.<what>" and never changes meaning within an SDK major.
#pragma once

#include <string>
#include <string_view>

#include "membrane/model.hpp"

namespace membrane::events {

// A module changed state (loading, running, stopped, failed, unloaded).
struct ModuleStateChanged {
    static constexpr std::string_view kTopic = "module.state";
    std::string module;
    std::string state;
    std::string message;
};

// The agent re-read its configuration (SIGHUP or D-Bus).
struct ConfigReloaded {
    static constexpr std::string_view kTopic = "agent.config_reloaded";
    std::string path;
};

// Nodes: published for every node at start (a module loaded later reads
// Model::nodes() in start()), then on every change.
struct NodeAdded {
    static constexpr std::string_view kTopic = "node.added";
    NodeInfo node;
};
struct NodeUpdated {
    static constexpr std::string_view kTopic = "node.updated";
    NodeInfo node;
};
struct NodeRemoved {
    static constexpr std::string_view kTopic = "node.removed";
    NodeInfo node;
};

// Endpoints: after the datapath state is written (maps, entry program).
struct EndpointCreated {
    static constexpr std::string_view kTopic = "endpoint.created";
    EndpointInfo endpoint;
};
// Labels (and so identity) changed.
struct EndpointUpdated {
    static constexpr std::string_view kTopic = "endpoint.updated";
    EndpointInfo endpoint;
};
struct EndpointDeleted {
    static constexpr std::string_view kTopic = "endpoint.deleted";
    EndpointInfo endpoint;
};

// SDK 1.5. Another node's endpoint became known or changed (identity,
// named ports), or went: after this node's ipcache says so.
struct RemoteEndpointUpdated {
    static constexpr std::string_view kTopic = "endpoint.remote_updated";
    RemoteEndpointInfo endpoint;
};
struct RemoteEndpointRemoved {
    static constexpr std::string_view kTopic = "endpoint.remote_removed";
    RemoteEndpointInfo endpoint;
};

// SDK 1.4. Identities: an allocated identity (a label set and its number,
// allocated here or anywhere in the cluster) became known to this node, or
// was forgotten. The reserved ones never change. A module loaded later reads
// Model::identities() in start().
struct IdentityAdded {
    static constexpr std::string_view kTopic = "identity.added";
    IdentityInfo identity;
};
struct IdentityRemoved {
    static constexpr std::string_view kTopic = "identity.removed";
    IdentityInfo identity;
};

// Applied objects (`membranectl apply`, the cluster store): a Kubernetes-
// style object was created or changed, or deleted, anywhere in the cluster.
// `document` is the object as the agent keeps it, JSON text (apiVersion,
// kind, metadata, spec...), already checked for its kind. At start every
// object known is published as applied.
struct ObjectApplied {
    static constexpr std::string_view kTopic = "object.applied";
    std::string kind;        // "Namespace"
    std::string namespace_;  // "" for a cluster-scoped kind
    std::string name;
    std::string document;
};
struct ObjectDeleted {
    static constexpr std::string_view kTopic = "object.deleted";
    std::string kind;
    std::string namespace_;
    std::string name;
};

}  // namespace membrane::events
