// EndpointDatapath on the BPF registry: the core object's pinned maps and
// its from-endpoint entry program.
#pragma once

#include "bpf/registry.hpp"
#include "model/datapath.hpp"

namespace membrane::kernel {

class RegistryDatapath final : public EndpointDatapath {
public:
    // The registry must have opened the core and outlive this object.
    explicit RegistryDatapath(Registry& registry) : registry_(registry) {}

    int endpoints_map() override;
    int ipcache_map() override;
    void attach_endpoint(const std::string& host_ifname) override;
    void detach_endpoint(const std::string& host_ifname) override;

private:
    Registry& registry_;
};

}  // namespace membrane::kernel
