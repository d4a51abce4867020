// What service-lb serves, kept change by change: the applied Services and
// EndpointSlices, each service's frontends (build_frontends) built again only
// when its Service or one of its slices changes, and which of them are
// served. A frontend is not served when this module cannot honour it (SCTP,
// loadBalancerSourceRanges, a NodePort outside the range), and an (address,
// port, protocol, scope) that several services claim is served by the first of them
// in "namespace/name" order; the others are told so in their problem.
// take_changes() hands over the services whose served frontends may have
// changed since the last call, with what they serve now (LbMaps::update);
// served() is every one of them (LbMaps::sync). Pure logic, no BPF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "service_table.hpp"

namespace membrane::service_lb {

// A port range from config, LOW-HIGH inclusive.
struct PortRange {
    std::uint16_t low = 0;
    std::uint16_t high = 0;
    bool operator==(const PortRange&) const = default;
};

class ServiceFrontends {
public:
    // Keys are "namespace/name".
    void set_service(const std::string& key, service::Service svc);
    void erase_service(const std::string& key);
    void set_slice(const std::string& key, service::EndpointSlice slice);
    void erase_slice(const std::string& key);
    // Every service is looked at again when either changes.
    void set_topology(Topology topology);
    void set_node_ports(PortRange range);
    // Whether this node's clients are translated at connect() (socket LB) or
    // per packet: only the packets have a source address to check
    // loadBalancerSourceRanges against.
    void set_socket_lb(bool on);

    struct Changes {
        std::set<std::string> services;  // every service looked at again (a deleted one serves nothing)
        std::vector<Frontend> frontends;  // what those services serve now
        // Services whose problem text is new or changed (said once, not at every sync).
        std::vector<std::pair<std::string, std::string>> new_problems;
    };
    Changes take_changes();

    // Every frontend served, by service, as of the last take_changes().
    std::vector<Frontend> served() const;
    // build_frontends() of every service, served or not, as of the last take_changes().
    const std::map<std::string, std::vector<Frontend>>& built() const { return built_; }
    // Service -> why some of its frontends are not served.
    const std::map<std::string, std::string>& problems() const { return problems_; }
    const std::map<std::string, service::Service>& services() const { return services_; }
    // The distinct addresses of `service`'s ready endpoints on `node` (all
    // of them with publishNotReadyAddresses): what kube-proxy's health
    // check counts, so a node whose pods only terminate is drained.
    std::size_t local_ready_endpoints(const std::string& service, const std::string& node) const;
    std::size_t service_count() const { return services_.size(); }
    std::size_t slice_count() const { return slices_.size(); }

private:
    using FrontendKey = std::tuple<std::string, std::uint16_t, Protocol, Scope>;
    // The frontend of `service` at `key` among its built ones, or null.
    const Frontend* built_at(const std::string& service, const FrontendKey& key) const;
    // Why this module cannot serve `frontend` ("" if it can).
    std::string unservable(const Frontend& frontend) const;
    void rebuild(const std::string& service, std::set<FrontendKey>& touched);
    void reconsider(const std::string& service, Changes& changes);

    std::map<std::string, service::Service> services_;
    std::map<std::string, service::EndpointSlice> slices_;
    std::map<std::string, std::set<std::string>> slices_of_;  // "ns/service" -> its slices' keys
    Topology topology_;
    PortRange node_ports_{30000, 32767};
    bool socket_lb_ = true;

    std::set<std::string> dirty_;  // services to build again
    bool all_dirty_ = false;
    std::map<std::string, std::vector<Frontend>> built_;  // service -> build_frontends()
    std::map<FrontendKey, std::set<std::string>> claimants_;  // every service whose built frontends have it
    std::map<std::string, std::vector<std::size_t>> served_;  // service -> indexes into built_[service]
    std::map<std::string, std::string> problems_;
};

}  // namespace membrane::service_lb
