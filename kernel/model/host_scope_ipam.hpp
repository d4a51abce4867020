// The default IPAM provider: this node's pod CIDR. The first address is the
// pods' gateway (answered by the datapath's ARP) and, like the network and
// broadcast addresses, never leased. Leases go to the lowest free address and
// are persisted atomically on every change (state_dir/ipam/host-scope.json).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <spdlog/logger.h>

#include "config/ipv4.hpp"
#include "model/ipam.hpp"

namespace membrane::kernel {

class HostScopeIpam final : public IpamProvider {
public:
    // `pool`: the local node's pod_cidr (/30 or larger); nullopt when the
    // config lists no nodes, then allocate() refuses with a clear message.
    HostScopeIpam(std::optional<Ipv4Cidr> pool, std::filesystem::path state_file, std::shared_ptr<spdlog::logger> log);

    std::string name() const override { return "host-scope"; }
    void restore() override;
    AddressLease allocate(const std::string& container_id, const std::string& ifname) override;
    bool release(const std::string& container_id, const std::string& ifname) override;
    void reconcile(const std::vector<IpamAllocation>& held_by_endpoints) override;
    std::vector<IpamAllocation> allocations() const override;

    std::uint32_t gateway() const { return pool_ ? pool_->network + 1 : 0; }

private:
    using Key = std::pair<std::string, std::string>;  // (container id, ifname)
    void persist(const std::map<Key, std::uint32_t>& leases) const;

    std::optional<Ipv4Cidr> pool_;
    std::filesystem::path state_file_;
    std::shared_ptr<spdlog::logger> log_;
    mutable std::mutex mutex_;
    std::map<Key, std::uint32_t> leases_;
    std::map<std::uint32_t, Key> leased_;  // address -> holder
};

}  // namespace membrane::kernel
