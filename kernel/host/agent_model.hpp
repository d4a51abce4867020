// The kernel's model as the module host hands it out (read-only to modules).
// It reads the model's parts through functions the agent sets, so the host
// does not depend on them (and tests can hand out a fixed model).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "membrane/model.hpp"

namespace membrane::kernel {

struct ModelSources {
    std::function<std::vector<NodeInfo>()> nodes;
    std::function<std::vector<EndpointInfo>()> endpoints;
    std::function<std::vector<IdentityInfo>()> identities;
    std::function<std::uint32_t()> underlay_mtu;
    std::function<std::vector<ObjectInfo>(const std::string& kind)> objects;
    std::function<std::vector<ContainerPort>(std::uint64_t id)> endpoint_ports;
    std::function<std::vector<RemoteEndpointInfo>()> remote_endpoints;
};

class AgentModel final : public membrane::Model {
public:
    AgentModel(std::string node_name, std::filesystem::path pin_dir)
        : node_name_(std::move(node_name)), pin_dir_(std::move(pin_dir)) {}

    // Until set (or for a source left empty) the lists are empty.
    void set_sources(ModelSources sources) { sources_ = std::move(sources); }

    const std::string& node_name() const override { return node_name_; }
    const std::filesystem::path& pin_dir() const override { return pin_dir_; }

    std::vector<NodeInfo> nodes() const override { return sources_.nodes ? sources_.nodes() : std::vector<NodeInfo>{}; }
    std::vector<EndpointInfo> endpoints() const override {
        return sources_.endpoints ? sources_.endpoints() : std::vector<EndpointInfo>{};
    }
    std::optional<EndpointInfo> endpoint(std::uint64_t id) const override {
        for (auto& endpoint : endpoints()) {
            if (endpoint.id == id) return endpoint;
        }
        return std::nullopt;
    }
    std::vector<IdentityInfo> identities() const override {
        return sources_.identities ? sources_.identities() : std::vector<IdentityInfo>{};
    }
    std::uint32_t underlay_mtu() const override { return sources_.underlay_mtu ? sources_.underlay_mtu() : 1500; }
    std::vector<ObjectInfo> objects(const std::string& kind) const override {
        return sources_.objects ? sources_.objects(kind) : std::vector<ObjectInfo>{};
    }
    std::vector<ContainerPort> endpoint_ports(std::uint64_t id) const override {
        return sources_.endpoint_ports ? sources_.endpoint_ports(id) : std::vector<ContainerPort>{};
    }
    std::vector<RemoteEndpointInfo> remote_endpoints() const override {
        return sources_.remote_endpoints ? sources_.remote_endpoints() : std::vector<RemoteEndpointInfo>{};
    }

private:
    std::string node_name_;
    std::filesystem::path pin_dir_;
    ModelSources sources_;
};

}  // namespace membrane::kernel
