// IP address management behind a provider interface. The kernel's default is
// HostScopeIpam (this node's pod CIDR from [[nodes]]); the eni module will
// provide another. A provider leases addresses per (container id, interface)
// and keeps its leases across restarts.
#pragma once

#include <string>
#include <vector>

#include "agent/agent_control.hpp"

namespace membrane::kernel {

struct IpamAllocation {
    std::string container_id;
    std::string ifname;
    std::string ipv4;
    bool operator==(const IpamAllocation&) const = default;
};

class IpamProvider {
public:
    virtual ~IpamProvider() = default;

    virtual std::string name() const = 0;
    // Reloads the provider's leases (agent start). Throws StateError when its
    // record is unreadable: losing leases would hand one address out twice.
    virtual void restore() = 0;
    // The same (container_id, ifname) gets the same lease until it is
    // released. Fills ipv4, prefix_len, gateway and pod_cidr; the caller sets
    // mtu. Throws ControlError (Failed: pool exhausted or none configured;
    // the message says which).
    virtual AddressLease allocate(const std::string& container_id, const std::string& ifname) = 0;
    // Idempotent; true if a lease was released.
    virtual bool release(const std::string& container_id, const std::string& ifname) = 0;
    virtual std::vector<IpamAllocation> allocations() const = 0;
};

}  // namespace membrane::kernel
