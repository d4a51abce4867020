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
    // record is unreadable; reconcile() then rebuilds the leases.
    virtual void restore() = 0;
    // The same (container_id, ifname) gets the same lease until it is
    // released. Fills ipv4, prefix_len, gateway and pod_cidr; the caller sets
    // mtu. Throws ControlError (Failed: pool exhausted or none configured;
    // the message says which).
    virtual AddressLease allocate(const std::string& container_id, const std::string& ifname) = 0;
    // Idempotent; true if a lease was released.
    virtual bool release(const std::string& container_id, const std::string& ifname) = 0;
    // Agent start, once the endpoints are restored (also after a restore()
    // that threw): the endpoints are the truth. Every address an endpoint
    // holds is leased to it again, a lease no endpoint holds is released
    // (logged), and the record is rewritten if anything changed. So a lost
    // or corrupt record cannot hand an endpoint's address to a new pod.
    virtual void reconcile(const std::vector<IpamAllocation>& held_by_endpoints) = 0;
    virtual std::vector<IpamAllocation> allocations() const = 0;
};

}  // namespace membrane::kernel
