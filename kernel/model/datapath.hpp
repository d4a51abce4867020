// What the model needs of the datapath: the two maps it writes (endpoints,
// ipcache) and the endpoint entry program on a pod's host-side veth. Behind
// an interface so the model's logic stays apart from the registry.
#pragma once

#include <string>

namespace membrane::kernel {

class EndpointDatapath {
public:
    virtual ~EndpointDatapath() = default;
    // File descriptors of the pinned core maps (owned by the datapath).
    virtual int endpoints_map() = 0;  // MBR_MAP_ENDPOINTS
    virtual int ipcache_map() = 0;    // MBR_MAP_IPCACHE
    // MBR_ENTRY_FROM_ENDPOINT on tc ingress of `host_ifname` (agent's netns);
    // throws (membrane::BpfError) naming the problem.
    virtual void attach_endpoint(const std::string& host_ifname) = 0;
    // Ignores a link that is gone.
    virtual void detach_endpoint(const std::string& host_ifname) = 0;
};

}  // namespace membrane::kernel
