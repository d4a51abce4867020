#include "model/host_scope_ipam.hpp"

#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {
constexpr int kLeasesFormat = 1;
}

HostScopeIpam::HostScopeIpam(std::optional<Ipv4Cidr> pool, std::filesystem::path state_file,
                             std::shared_ptr<spdlog::logger> log)
    : pool_(pool), state_file_(std::move(state_file)), log_(std::move(log)) {}

void HostScopeIpam::restore() {
    const auto document = read_state_file(state_file_);
    const std::lock_guard lock(mutex_);
    leases_.clear();
    leased_.clear();
    if (!document) return;
    try {
        expect_state_format(state_file_, *document, kLeasesFormat);
        for (const auto& item : document->at("allocations")) {
            Key key{item.at("container_id").get<std::string>(), item.at("ifname").get<std::string>()};
            const auto text = item.at("ipv4").get<std::string>();
            const auto address = parse_ipv4(text);
            if (!address) throw corrupt_record(state_file_, "'" + text + "' is not an IPv4 address");
            if (!pool_ || !pool_->contains(*address)) {
                // The pool changed while the agent was down: the endpoint keeps
                // its address (endpoints.json), the pool no longer tracks it.
                log_->warn("{}: lease of {} to {}/{} is outside the pool {}; dropped", state_file_.string(), text,
                           key.first, key.second, pool_ ? pool_->str() : "(none)");
                continue;
            }
            if (leased_.count(*address) != 0) throw corrupt_record(state_file_, text + " is leased twice");
            if (leases_.count(key) != 0) {
                throw corrupt_record(state_file_, key.first + "/" + key.second + " holds two leases");
            }
            leases_.emplace(key, *address);
            leased_.emplace(*address, key);
        }
    } catch (const nlohmann::json::exception& e) {
        leases_.clear();
        leased_.clear();
        throw corrupt_record(state_file_, std::string("not an address record the agent wrote (") + e.what() + ")");
    }
}

AddressLease HostScopeIpam::allocate(const std::string& container_id, const std::string& ifname) {
    if (!pool_) {
        throw ControlError(ControlErrorKind::Failed,
                           "no address pool: this node is not listed in [[nodes]] of membrane.toml (its pod_cidr is "
                           "the pool)");
    }
    const std::lock_guard lock(mutex_);
    const Key key{container_id, ifname};
    auto lease_of = [&](std::uint32_t address) {
        return AddressLease{format_ipv4(address), 32, format_ipv4(gateway()), pool_->str(), 0};
    };
    if (auto it = leases_.find(key); it != leases_.end()) return lease_of(it->second);

    // Lowest free address after the gateway, before the broadcast address.
    const std::uint32_t first = pool_->network + 2;
    const std::uint32_t last = pool_->broadcast() - 1;
    std::optional<std::uint32_t> chosen;
    for (std::uint32_t address = first; address <= last; ++address) {
        if (leased_.count(address) == 0) {
            chosen = address;
            break;
        }
    }
    if (!chosen) {
        throw ControlError(ControlErrorKind::Failed, "the pod CIDR " + pool_->str() + " is exhausted: all " +
                                                         std::to_string(last - first + 1) +
                                                         " pod addresses are leased");
    }
    auto leases = leases_;
    leases.emplace(key, *chosen);
    try {
        persist(leases);
    } catch (const StateError& e) {
        throw ControlError(ControlErrorKind::Failed, std::string("cannot record the lease: ") + e.what());
    }
    leases_ = std::move(leases);
    leased_.emplace(*chosen, key);
    return lease_of(*chosen);
}

bool HostScopeIpam::release(const std::string& container_id, const std::string& ifname) {
    const std::lock_guard lock(mutex_);
    const Key key{container_id, ifname};
    auto it = leases_.find(key);
    if (it == leases_.end()) return false;
    auto leases = leases_;
    leases.erase(key);
    try {
        persist(leases);
    } catch (const StateError& e) {
        throw ControlError(ControlErrorKind::Failed, std::string("cannot record the release: ") + e.what());
    }
    leased_.erase(it->second);
    leases_ = std::move(leases);
    return true;
}

void HostScopeIpam::reconcile(const std::vector<IpamAllocation>& held_by_endpoints) {
    const std::lock_guard lock(mutex_);
    std::map<Key, std::uint32_t> leases;
    std::map<std::uint32_t, Key> leased;
    for (const auto& held : held_by_endpoints) {
        const auto address = parse_ipv4(held.ipv4);
        // Not this pool's (chained mode, or the pool changed): not ours to track.
        if (!address || !pool_ || !pool_->contains(*address)) continue;
        const Key key{held.container_id, held.ifname};
        if (auto other = leased.find(*address); other != leased.end()) {
            log_->error("{} is held by two endpoints, {}/{} and {}/{}; leased to the first", held.ipv4,
                        other->second.first, other->second.second, key.first, key.second);
            continue;
        }
        if (leases.count(key) != 0) continue;
        leases.emplace(key, *address);
        leased.emplace(*address, key);
        auto recorded = leases_.find(key);
        if (recorded == leases_.end() || recorded->second != *address) {
            log_->warn("lease of {} to {}/{} was missing from {}; re-established from the endpoint", held.ipv4,
                       key.first, key.second, state_file_.string());
        }
    }
    for (const auto& [key, address] : leases_) {
        auto kept = leases.find(key);
        if (kept == leases.end() || kept->second != address) {
            log_->warn("released the lease of {} to {}/{}: no endpoint holds it", format_ipv4(address), key.first,
                       key.second);
        }
    }
    if (leases == leases_) return;
    // If the rewrite fails the leases still hold in memory: this run hands out
    // no address twice, and the next start reconciles again.
    try {
        persist(leases);
    } catch (const StateError& e) {
        log_->error("cannot rewrite the reconciled leases: {}", e.what());
    }
    leases_ = std::move(leases);
    leased_ = std::move(leased);
}

std::vector<IpamAllocation> HostScopeIpam::allocations() const {
    const std::lock_guard lock(mutex_);
    std::vector<IpamAllocation> out;
    for (const auto& [address, key] : leased_) out.push_back(IpamAllocation{key.first, key.second, format_ipv4(address)});
    return out;
}

void HostScopeIpam::persist(const std::map<Key, std::uint32_t>& leases) const {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [key, address] : leases) {
        items.push_back({{"container_id", key.first}, {"ifname", key.second}, {"ipv4", format_ipv4(address)}});
    }
    write_state_file(state_file_, {{"format", kLeasesFormat}, {"pool", pool_ ? pool_->str() : ""}, {"allocations", items}});
}

}  // namespace membrane::kernel
