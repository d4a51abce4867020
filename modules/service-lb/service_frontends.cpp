#include "service_frontends.hpp"

#include <algorithm>

#include <membrane/service_parse.hpp>

namespace membrane::service_lb {
namespace {

std::string service_of(const service::EndpointSlice& slice) {
    return slice.service_name.empty() ? std::string() : slice.namespace_ + "/" + slice.service_name;
}

}  // namespace

void ServiceFrontends::set_service(const std::string& key, service::Service svc) {
    const auto found = services_.find(key);
    if (found != services_.end() && found->second == svc) return;
    services_.insert_or_assign(key, std::move(svc));
    dirty_.insert(key);
}

void ServiceFrontends::erase_service(const std::string& key) {
    if (services_.erase(key) > 0) dirty_.insert(key);
}

void ServiceFrontends::set_slice(const std::string& key, service::EndpointSlice slice) {
    const auto found = slices_.find(key);
    if (found != slices_.end() && found->second == slice) return;
    erase_slice(key);
    const std::string owner = service_of(slice);
    slices_.emplace(key, std::move(slice));
    if (owner.empty()) return;
    slices_of_[owner].insert(key);
    dirty_.insert(owner);
}

void ServiceFrontends::erase_slice(const std::string& key) {
    const auto found = slices_.find(key);
    if (found == slices_.end()) return;
    if (const std::string owner = service_of(found->second); !owner.empty()) {
        if (const auto of = slices_of_.find(owner); of != slices_of_.end()) {
            of->second.erase(key);
            if (of->second.empty()) slices_of_.erase(of);
        }
        dirty_.insert(owner);
    }
    slices_.erase(found);
}

void ServiceFrontends::set_topology(Topology topology) {
    if (topology.local_node == topology_.local_node && topology.node_addresses == topology_.node_addresses) return;
    topology_ = std::move(topology);
    all_dirty_ = true;
}

void ServiceFrontends::set_node_ports(PortRange range) {
    if (range == node_ports_) return;
    node_ports_ = range;
    all_dirty_ = true;
}

std::size_t ServiceFrontends::local_ready_endpoints(const std::string& service, const std::string& node) const {
    const auto svc = services_.find(service);
    const auto of = slices_of_.find(service);
    if (svc == services_.end() || of == slices_of_.end()) return 0;
    std::set<std::string> addresses;
    for (const auto& key : of->second) {
        for (const auto& endpoint : slices_.at(key).endpoints) {
            if (endpoint.node_name != node || !(endpoint.ready || svc->second.publish_not_ready_addresses)) continue;
            addresses.insert(endpoint.addresses.begin(), endpoint.addresses.end());
        }
    }
    return addresses.size();
}

void ServiceFrontends::set_socket_lb(bool on) {
    if (on == socket_lb_) return;
    socket_lb_ = on;
    all_dirty_ = true;
}

const Frontend* ServiceFrontends::built_at(const std::string& service, const FrontendKey& key) const {
    const auto found = built_.find(service);
    if (found == built_.end()) return nullptr;
    // build_frontends() sorts by (address, port, protocol, scope), one frontend each.
    const auto& list = found->second;
    const auto at = std::lower_bound(list.begin(), list.end(), key, [](const Frontend& f, const FrontendKey& k) {
        return std::tie(f.address, f.port, f.protocol, f.scope) < k;
    });
    return at != list.end() && std::tie(at->address, at->port, at->protocol, at->scope) == key ? &*at : nullptr;
}

std::string ServiceFrontends::unservable(const Frontend& frontend) const {
    if (frontend.protocol == Protocol::sctp) return "SCTP ports are not served (TCP and UDP only)";
    // connect() has no source address yet to check against the ranges: with
    // socket LB, this node's own clients are left untranslated (to the load
    // balancer itself); per packet, their source is checked as any client's.
    if (frontend.kind == FrontendKind::load_balancer && !frontend.source_ranges.empty() &&
        frontend.scope == Scope::socket && socket_lb_) {
        return "load balancer address " + frontend.address +
               " is served to clients outside the node only: loadBalancerSourceRanges cannot be checked at connect()";
    }
    if (frontend.kind == FrontendKind::node_port && (frontend.port < node_ports_.low || frontend.port > node_ports_.high)) {
        return "nodePort " + std::to_string(frontend.port) + " is outside node_port_range " +
               std::to_string(node_ports_.low) + "-" + std::to_string(node_ports_.high);
    }
    return {};
}

void ServiceFrontends::rebuild(const std::string& service, std::set<FrontendKey>& touched) {
    if (const auto old = built_.find(service); old != built_.end()) {
        for (const auto& frontend : old->second) {
            const FrontendKey key{frontend.address, frontend.port, frontend.protocol, frontend.scope};
            touched.insert(key);
            const auto claim = claimants_.find(key);
            claim->second.erase(service);
            if (claim->second.empty()) claimants_.erase(claim);
        }
        built_.erase(old);
    }
    const auto svc = services_.find(service);
    if (svc == services_.end()) return;
    std::vector<service::EndpointSlice> slices;
    if (const auto of = slices_of_.find(service); of != slices_of_.end()) {
        for (const auto& key : of->second) slices.push_back(slices_.at(key));
    }
    auto& built = built_[service] = build_frontends(svc->second, slices, topology_);
    for (const auto& frontend : built) {
        const FrontendKey key{frontend.address, frontend.port, frontend.protocol, frontend.scope};
        touched.insert(key);
        claimants_[key].insert(service);
    }
}

// What `service` serves now, and its problem: a frontend this module can
// serve is the service's unless a service before it in key order claims it
// (and can serve it) too.
void ServiceFrontends::reconsider(const std::string& service, Changes& changes) {
    const auto built = built_.find(service);
    std::string problem;
    // Once each: a NodePort's two scopes have the same problem.
    const auto tell = [&](const std::string& text) {
        if (problem.find(text) == std::string::npos) problem += (problem.empty() ? "" : "; ") + text;
    };
    std::vector<std::size_t> served;
    if (built != built_.end()) {
        for (std::size_t i = 0; i < built->second.size(); ++i) {
            const Frontend& frontend = built->second[i];
            if (const auto why = unservable(frontend); !why.empty()) {
                tell(why);
                continue;
            }
            const FrontendKey key{frontend.address, frontend.port, frontend.protocol, frontend.scope};
            std::string owner;
            for (const auto& claimant : claimants_.at(key)) {
                const Frontend* theirs = claimant == service ? &frontend : built_at(claimant, key);
                if (theirs && unservable(*theirs).empty()) {
                    owner = claimant;
                    break;
                }
            }
            if (owner != service) {
                tell(frontend.address + ":" + std::to_string(frontend.port) + "/" +
                     service::protocol_name(frontend.protocol) + " is already service " + owner + "'s");
                continue;
            }
            served.push_back(i);
            changes.frontends.push_back(frontend);
        }
    }
    if (served.empty()) {
        served_.erase(service);
    } else {
        served_[service] = std::move(served);
    }
    const auto old = problems_.find(service);
    if (problem.empty()) {
        if (old != problems_.end()) problems_.erase(old);
        return;
    }
    if (old == problems_.end() || old->second != problem) changes.new_problems.emplace_back(service, problem);
    problems_[service] = std::move(problem);
}

ServiceFrontends::Changes ServiceFrontends::take_changes() {
    std::set<std::string> rebuilt = std::move(dirty_);
    dirty_.clear();
    if (std::exchange(all_dirty_, false)) {
        for (const auto& [key, svc] : services_) rebuilt.insert(key);
        for (const auto& [key, frontends] : built_) rebuilt.insert(key);
    }
    std::set<FrontendKey> touched;
    for (const auto& service : rebuilt) rebuild(service, touched);
    // A service that claims an address one of these gave up or took may win or lose it.
    Changes changes;
    changes.services = std::move(rebuilt);
    for (const auto& key : touched) {
        if (const auto claim = claimants_.find(key); claim != claimants_.end()) {
            changes.services.insert(claim->second.begin(), claim->second.end());
        }
    }
    for (const auto& service : changes.services) reconsider(service, changes);
    return changes;
}

std::vector<Frontend> ServiceFrontends::served() const {
    std::vector<Frontend> out;
    for (const auto& [service, indexes] : served_) {
        const auto& built = built_.at(service);
        for (const auto i : indexes) out.push_back(built[i]);
    }
    return out;
}

}  // namespace membrane::service_lb
