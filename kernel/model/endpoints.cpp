#include "model/endpoints.hpp"

#include <algorithm>
#include <cstring>

#include "config/names.hpp"
#include "membrane/events.hpp"
#include "model/datapath_maps.hpp"
#include "model/endpoint_store.hpp"
#include "model/labels.hpp"
#include "model/link_info.hpp"
#include "state/state_file.hpp"
#include "model/undo.hpp"

namespace membrane::kernel {
namespace {

// EndpointInfo::state is a name (SDK layout); the kernel sets and reads it
// through the enum only.
void set_state(EndpointInfo& endpoint, EndpointState state) {
    endpoint.state = std::string(endpoint_state_name(state));
}

bool is_ready(const EndpointInfo& endpoint) {
    return parse_endpoint_state(endpoint.state) == EndpointState::ready;
}

[[noreturn]] void invalid(const std::string& message) { throw ControlError(ControlErrorKind::InvalidArgument, message); }

std::string key_text(const std::string& container_id, const std::string& ifname) {
    return "container " + container_id + " interface " + ifname;
}

void check_key(const std::string& container_id, const std::string& ifname) {
    if (!valid_container_id(container_id)) {
        invalid("container id '" + container_id + "' must be 1 to 256 letters, digits, '_', '.' or '-'");
    }
    if (!is_interface_name(ifname)) invalid("'" + ifname + "' is not a Linux interface name");
}

std::uint32_t address_of(const EndpointInfo& endpoint) { return parse_ipv4(endpoint.ipv4).value_or(0); }

mbr_endpoint_value endpoint_value(const EndpointInfo& endpoint, const MacAddress& host_mac) {
    mbr_endpoint_value value{};
    value.endpoint_id = endpoint.id;
    value.ifindex = endpoint.host_ifindex;
    value.identity = endpoint.identity;
    const auto mac = parse_mac(endpoint.mac).value_or(MacAddress{});
    std::memcpy(value.mac, mac.data(), sizeof value.mac);
    std::memcpy(value.host_mac, host_mac.data(), sizeof value.host_mac);
    return value;
}

bool same_request(const EndpointInfo& endpoint, const EndpointRequest& request) {
    return endpoint.netns == request.netns && endpoint.host_ifname == request.host_ifname &&
           endpoint.ipv4 == request.ipv4 && endpoint.mac == format_mac(parse_mac(request.mac).value_or(MacAddress{})) &&
           endpoint.labels == request.labels;
}

// Runs a datapath step; its failure becomes a ControlError naming the step.
template <class Step>
void datapath_step(const std::string& what, Step&& step) {
    try {
        step();
    } catch (const ControlError&) {
        throw;
    } catch (const std::exception& e) {
        throw ControlError(ControlErrorKind::Failed, what + ": " + e.what());
    }
}

// Why the link behind `endpoint` is not the one it was created on, or
// nullopt. A name alone proves little after a restart: another interface may
// have taken it, or the pod's side may have moved elsewhere; either way its
// traffic is not this endpoint's, and its map entries must not say so.
std::optional<std::string> not_the_recorded_link(const EndpointInfo& endpoint) {
    const auto ifindex = interface_index(endpoint.host_ifname);
    if (ifindex == 0) return "host interface " + endpoint.host_ifname + " is gone";
    if (endpoint.host_ifindex != 0 && ifindex != endpoint.host_ifindex) {
        return "host interface " + endpoint.host_ifname + " has ifindex " + std::to_string(ifindex) +
               ", not the recorded " + std::to_string(endpoint.host_ifindex) + " (another interface took its name)";
    }
    if (endpoint.netns.empty()) return std::nullopt;  // create refuses that; an old record may lack it
    return veth_peer_outside(endpoint.host_ifname, endpoint.netns);
}

}  // namespace

bool valid_container_id(const std::string& id) {
    if (id.empty() || id.size() > 256) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
    });
}

EndpointManager::EndpointManager(EndpointManagerParts parts, std::filesystem::path state_file,
                                 std::function<std::uint32_t()> pod_mtu, std::shared_ptr<spdlog::logger> log)
    : parts_(parts), state_file_(std::move(state_file)), pod_mtu_(std::move(pod_mtu)), log_(std::move(log)) {}

void EndpointManager::restore() {
    const std::lock_guard lock(mutex_);
    auto record = load_endpoint_record(state_file_);
    next_id_ = record.next_id;
    endpoints_.clear();
    ports_ = std::move(record.ports);
    std::set<std::uint32_t> live;
    for (auto& endpoint : record.endpoints) {
        try {
            endpoint.identity = parts_.identities.acquire(endpoint.labels);
        } catch (const std::exception& e) {
            log_->error("endpoint {} ({}): cannot take its identity again: {}", endpoint.id,
                        key_text(endpoint.container_id, endpoint.ifname), e.what());
        }
        set_state(endpoint, EndpointState::disconnected);
        const auto why_not = not_the_recorded_link(endpoint);
        if (!why_not) {
            endpoint.host_ifindex = interface_index(endpoint.host_ifname);
            try {
                write_entries(endpoint);
                parts_.datapath.attach_endpoint(endpoint.host_ifname);
                set_state(endpoint, EndpointState::ready);
                live.insert(address_of(endpoint));
            } catch (const std::exception& e) {
                log_->error("endpoint {} ({}): cannot restore its datapath: {}", endpoint.id,
                            key_text(endpoint.container_id, endpoint.ifname), e.what());
                try {
                    remove_entries(endpoint);
                } catch (const std::exception&) {
                }
            }
        }
        if (why_not) {
            log_->warn("endpoint {} ({}): {}; disconnected until it is deleted", endpoint.id,
                       key_text(endpoint.container_id, endpoint.ifname), *why_not);
        }
        endpoints_.emplace(endpoint.id, std::move(endpoint));
    }
    const auto removed = prune_endpoint_entries(parts_.datapath.endpoints_map(), live);
    if (removed != 0) log_->info("removed {} endpoints-map entries no endpoint accounts for", removed);
    persist_locked();  // identities may have been renumbered if their record was lost
    log_->info("restored {} endpoints ({} connected)", endpoints_.size(), live.size());
}

std::set<Ipv4Cidr> EndpointManager::ipcache_prefixes() const {
    const std::lock_guard lock(mutex_);
    std::set<Ipv4Cidr> out;
    for (const auto& [id, endpoint] : endpoints_) {
        if (is_ready(endpoint)) out.insert(Ipv4Cidr{address_of(endpoint), 32});
    }
    return out;
}

AddressLease EndpointManager::allocate_address(const std::string& container_id, const std::string& ifname) {
    check_key(container_id, ifname);
    AddressLease lease = parts_.ipam.allocate(container_id, ifname);
    lease.mtu = pod_mtu_ ? pod_mtu_() : 1500;
    return lease;
}

void EndpointManager::release_address(const std::string& container_id, const std::string& ifname) {
    {
        const std::lock_guard lock(mutex_);
        if (const auto* endpoint = find_locked(container_id, ifname)) {
            invalid("endpoint " + std::to_string(endpoint->id) + " (" + key_text(container_id, ifname) +
                    ") still uses " + endpoint->ipv4 + "; deleting the endpoint releases it");
        }
    }
    parts_.ipam.release(container_id, ifname);
}

EndpointInfo EndpointManager::create_endpoint(const EndpointRequest& request) {
    check_key(request.container_id, request.ifname);
    const std::lock_guard lock(mutex_);
    if (const auto* existing = find_locked(request.container_id, request.ifname)) {
        if (is_ready(*existing)) {
            if (same_request(*existing, request)) return *existing;
            invalid("endpoint " + std::to_string(existing->id) + " exists for " +
                    key_text(request.container_id, request.ifname) + " with other settings (" + existing->ipv4 +
                    " on " + existing->host_ifname + "); delete it first");
        }
    }
    try {
        return create_locked(request);
    } catch (const ControlError&) {
        // Nothing of the endpoint is left; neither is the address it was
        // leased (the runtime follows a failed ADD with DEL anyway).
        try {
            parts_.ipam.release(request.container_id, request.ifname);
        } catch (const std::exception& e) {
            log_->warn("{}: releasing the address after a failed create: {}",
                       key_text(request.container_id, request.ifname), e.what());
        }
        throw;
    }
}

EndpointInfo EndpointManager::create_locked(const EndpointRequest& request) {
    const std::string who = key_text(request.container_id, request.ifname);
    // Validate everything before anything changes.
    if (request.netns.empty() || request.netns.front() != '/') {
        invalid(who + ": netns '" + request.netns + "' must be an absolute path (CNI_NETNS)");
    }
    if (!is_interface_name(request.host_ifname)) invalid(who + ": '" + request.host_ifname + "' is not a Linux interface name");
    const auto address = parse_ipv4(request.ipv4);
    if (!address) invalid(who + ": '" + request.ipv4 + "' is not an IPv4 address");
    const auto mac = parse_mac(request.mac);
    if (!mac) invalid(who + ": '" + request.mac + "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
    if (((*mac)[0] & 1) != 0 || *mac == MacAddress{}) invalid(who + ": " + request.mac + " is not a unicast MAC address");
    if (auto problem = label_problem(request.labels)) invalid(who + ": " + *problem);
    for (const auto& [id, other] : endpoints_) {
        if (other.ipv4 == request.ipv4 && !(other.container_id == request.container_id && other.ifname == request.ifname)) {
            invalid(who + ": " + request.ipv4 + " is endpoint " + std::to_string(id) + "'s address (" +
                    key_text(other.container_id, other.ifname) + ")");
        }
    }
    // Chained mode: an address from another plugin's IPAM is taken as is,
    // unless this node's pool leased it to someone else.
    for (const auto& lease : parts_.ipam.allocations()) {
        if (lease.ipv4 == request.ipv4 && !(lease.container_id == request.container_id && lease.ifname == request.ifname)) {
            invalid(who + ": " + request.ipv4 + " is leased to " + key_text(lease.container_id, lease.ifname));
        }
    }
    const auto ifindex = interface_index(request.host_ifname);
    const auto host_mac = interface_mac(request.host_ifname);
    if (ifindex == 0 || !host_mac) {
        invalid(who + ": host interface '" + request.host_ifname + "' does not exist in the agent's network namespace");
    }

    Undo undo;
    // A disconnected endpoint of the same key is replaced.
    for (auto it = endpoints_.begin(); it != endpoints_.end(); ++it) {
        if (it->second.container_id == request.container_id && it->second.ifname == request.ifname) {
            auto old = std::move(it->second);
            endpoints_.erase(it);
            parts_.identities.release(old.identity);
            undo.add([this, old] {
                parts_.identities.acquire(old.labels);
                endpoints_.emplace(old.id, old);
            });
            break;
        }
    }

    EndpointInfo endpoint;
    endpoint.id = next_id_;
    endpoint.container_id = request.container_id;
    endpoint.ifname = request.ifname;
    endpoint.netns = request.netns;
    endpoint.host_ifname = request.host_ifname;
    endpoint.host_ifindex = ifindex;
    endpoint.ipv4 = format_ipv4(*address);
    endpoint.mac = format_mac(*mac);
    endpoint.labels = request.labels;
    set_state(endpoint, EndpointState::ready);
    try {
        endpoint.identity = parts_.identities.acquire(request.labels);
    } catch (const std::exception& e) {
        throw ControlError(ControlErrorKind::Failed, who + ": cannot allocate an identity: " + e.what());
    }
    undo.add([this, identity = endpoint.identity] { parts_.identities.release(identity); });

    datapath_step(who + ": writing " + MBR_MAP_ENDPOINTS, [&] {
        put_endpoint_entry(parts_.datapath.endpoints_map(), *address, endpoint_value(endpoint, *host_mac));
    });
    undo.add([this, address] { delete_endpoint_entry(parts_.datapath.endpoints_map(), *address); });
    datapath_step(who + ": writing " + MBR_MAP_IPCACHE, [&] {
        put_ipcache_entry(parts_.datapath.ipcache_map(), Ipv4Cidr{*address, 32}, ipcache_value(endpoint.identity));
    });
    undo.add([this, address] { delete_ipcache_entry(parts_.datapath.ipcache_map(), Ipv4Cidr{*address, 32}); });
    datapath_step(who + ": attaching " + MBR_ENTRY_FROM_ENDPOINT + " to " + request.host_ifname,
                  [&] { parts_.datapath.attach_endpoint(request.host_ifname); });
    undo.add([this, host = request.host_ifname] { parts_.datapath.detach_endpoint(host); });

    endpoints_.emplace(endpoint.id, endpoint);
    if (!request.ports.empty()) ports_[endpoint.id] = request.ports;
    ++next_id_;
    undo.add([this, id = endpoint.id] {
        endpoints_.erase(id);
        ports_.erase(id);
        --next_id_;
    });
    datapath_step(who + ": recording the endpoint", [&] { persist_locked(); });
    undo.commit();

    log_->info("endpoint {} created: {} {} on {} (ifindex {}), identity {}", endpoint.id, who, endpoint.ipv4,
               endpoint.host_ifname, endpoint.host_ifindex, endpoint.identity);
    parts_.bus.publish(events::EndpointCreated{endpoint});
    return endpoint;
}

void EndpointManager::delete_endpoint(const std::string& container_id, const std::string& ifname) {
    std::optional<EndpointInfo> gone;
    {
        const std::lock_guard lock(mutex_);
        if (const auto* found = find_locked(container_id, ifname)) {
            gone = *found;
            endpoints_.erase(gone->id);
            auto gone_ports = ports_.extract(gone->id);
            try {
                persist_locked();
            } catch (const StateError& e) {
                endpoints_.emplace(gone->id, *gone);
                if (gone_ports) ports_.insert(std::move(gone_ports));
                throw ControlError(ControlErrorKind::Failed,
                                   key_text(container_id, ifname) + ": cannot record the deletion: " + e.what());
            }
            // Recorded as gone first: whatever fails below, a restart's
            // pruning removes what is left in the maps.
            try {
                parts_.datapath.detach_endpoint(gone->host_ifname);
            } catch (const std::exception& e) {
                log_->warn("endpoint {}: detaching from {}: {}", gone->id, gone->host_ifname, e.what());
            }
            try {
                remove_entries(*gone);
            } catch (const std::exception& e) {
                log_->warn("endpoint {}: removing its map entries: {}", gone->id, e.what());
            }
            parts_.identities.release(gone->identity);
        }
    }
    parts_.ipam.release(container_id, ifname);  // also after a failed ADD that left only a lease
    if (gone) {
        log_->info("endpoint {} deleted ({} {})", gone->id, key_text(container_id, ifname), gone->ipv4);
        parts_.bus.publish(events::EndpointDeleted{*gone});
    }
}

std::vector<ContainerPort> EndpointManager::endpoint_ports(std::uint64_t id) const {
    const std::lock_guard lock(mutex_);
    const auto it = ports_.find(id);
    return it == ports_.end() ? std::vector<ContainerPort>{} : it->second;
}

std::vector<EndpointInfo> EndpointManager::list_endpoints() const {
    const std::lock_guard lock(mutex_);
    std::vector<EndpointInfo> out;
    for (const auto& [id, endpoint] : endpoints_) out.push_back(endpoint);
    return out;
}

EndpointInfo EndpointManager::get_endpoint(std::uint64_t id) const {
    const std::lock_guard lock(mutex_);
    auto it = endpoints_.find(id);
    if (it == endpoints_.end()) throw ControlError(ControlErrorKind::NotFound, "no endpoint " + std::to_string(id));
    return it->second;
}

EndpointInfo EndpointManager::find_endpoint(const std::string& container_id, const std::string& ifname) const {
    const std::lock_guard lock(mutex_);
    if (const auto* endpoint = find_locked(container_id, ifname)) return *endpoint;
    throw ControlError(ControlErrorKind::NotFound, "no endpoint for " + key_text(container_id, ifname));
}

EndpointInfo EndpointManager::set_endpoint_labels(std::uint64_t id, const Labels& labels) {
    if (auto problem = label_problem(labels)) invalid(*problem);
    const std::lock_guard lock(mutex_);
    auto it = endpoints_.find(id);
    if (it == endpoints_.end()) throw ControlError(ControlErrorKind::NotFound, "no endpoint " + std::to_string(id));
    const EndpointInfo old = it->second;
    if (old.labels == labels) return old;
    const std::string who = "endpoint " + std::to_string(id);

    Undo undo;
    EndpointInfo updated = old;
    updated.labels = labels;
    try {
        updated.identity = parts_.identities.acquire(labels);
    } catch (const std::exception& e) {
        throw ControlError(ControlErrorKind::Failed, who + ": cannot allocate an identity: " + e.what());
    }
    undo.add([this, identity = updated.identity] { parts_.identities.release(identity); });
    if (is_ready(updated)) {
        datapath_step(who + ": updating its map entries", [&] { write_entries(updated); });
        undo.add([this, old] { write_entries(old); });
    }
    it->second = updated;
    undo.add([this, old] { endpoints_[old.id] = old; });
    datapath_step(who + ": recording the new labels", [&] { persist_locked(); });
    undo.commit();
    parts_.identities.release(old.identity);

    log_->info("{}: labels {} -> identity {} (was {})", who, format_labels(labels), updated.identity, old.identity);
    parts_.bus.publish(events::EndpointUpdated{updated});
    return updated;
}

void EndpointManager::prepare_identity(const Labels& labels,
                                       std::function<void(std::optional<IdentityProblem>)> ready) {
    if (auto problem = label_problem(labels)) invalid(*problem);
    parts_.identities.prepare(labels, std::move(ready));
}

std::vector<IdentityInfo> EndpointManager::list_identities() const { return parts_.identities.list(); }

std::vector<NodeInfo> EndpointManager::list_nodes() const { return parts_.nodes.nodes(); }

void EndpointManager::write_entries(const EndpointInfo& endpoint) {
    const auto host_mac = interface_mac(endpoint.host_ifname);
    if (!host_mac) throw std::runtime_error("host interface " + endpoint.host_ifname + " is gone");
    const auto address = address_of(endpoint);
    put_endpoint_entry(parts_.datapath.endpoints_map(), address, endpoint_value(endpoint, *host_mac));
    put_ipcache_entry(parts_.datapath.ipcache_map(), Ipv4Cidr{address, 32}, ipcache_value(endpoint.identity));
}

void EndpointManager::remove_entries(const EndpointInfo& endpoint) {
    const auto address = address_of(endpoint);
    delete_endpoint_entry(parts_.datapath.endpoints_map(), address);
    delete_ipcache_entry(parts_.datapath.ipcache_map(), Ipv4Cidr{address, 32});
}

void EndpointManager::persist_locked() {
    EndpointRecord record;
    record.next_id = next_id_;
    for (const auto& [id, endpoint] : endpoints_) {
        record.endpoints.push_back(endpoint);
        if (const auto ports = ports_.find(id); ports != ports_.end()) record.ports[id] = ports->second;
    }
    save_endpoint_record(state_file_, record);
}

const EndpointInfo* EndpointManager::find_locked(const std::string& container_id, const std::string& ifname) const {
    for (const auto& [id, endpoint] : endpoints_) {
        if (endpoint.container_id == container_id && endpoint.ifname == ifname) return &endpoint;
    }
    return nullptr;
}

}  // namespace membrane::kernel
