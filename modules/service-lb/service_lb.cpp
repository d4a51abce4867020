// service-lb: Kubernetes services on O(1) BPF hash maps instead of
// kube-proxy's iptables chains. From the applied Service and EndpointSlice
// objects (`membranectl apply`, the cluster store) the module works out
// every frontend and its backends as kube-proxy would (service_table.hpp),
// again only for the services a change concerns (service_frontends.hpp),
// keeps its pinned maps equal to them (lb_maps.hpp), and puts its socket
// programs (bpf/service_lb.bpf.c) on the agent's cgroup root, so a
// connection to a service is translated once, at connect(), to a backend.
// After a sync that removed backends it destroys the connected UDP sockets
// left on them (udp_sweep.hpp), so their clients connect anew.
//
// Connections that enter the node from outside (NodePorts, external and load
// balancer IPs) are translated packet by packet in pipeline slot
// MBR_STAGE_SERVICE (bpf/packet_lb.bpf.c); with socket_lb = false the socket
// programs are not attached and that stage translates the pods' packets too.
// A LoadBalancer service with externalTrafficPolicy Local has its
// healthCheckNodePort answered here (health_check.hpp), so a load balancer
// skips nodes without its endpoints.
//
// [module.service-lb] keys (all optional):
//   socket_lb = true                 # false: pods' connections translated per packet
//   node_port_range = "30000-32767"  # NodePorts outside it are not served
//   snat_port_range = "61000-65535"  # source ports of connections from outside sent
//                                    # to another node's backend (keep it apart from
//                                    # net.ipv4.ip_local_port_range)
//   maglev_table_size = 16381        # slots of each Maglev table (a prime, 251 to 131071):
//                                    # a connection from outside picks its backend there
//   nodeport_addresses = []          # IPv4 CIDRs: NodePorts answer on the node's addresses
//                                    # in them (all when empty), and on 127.0.0.1 when one
//                                    # holds it
//   services_map_size = 1048576      # entries of the pinned maps, each 1024 to 16777216
//   backends_map_size = 1048576      # (settings.hpp MapSizes says what an entry is); a
//   affinity_map_size = 65536        # change reloads the module, which resizes the pins
//   nat_map_size = 262144            # and keeps their entries (refused, the old generation
//   reverse_map_size = 65536         # running on, when they do not fit); a sync that needs
//   udp_map_size = 65536             # more than the services or backends map holds is
//   maglev_map_size = 65536          # refused whole, its services told so
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <utility>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <nlohmann/json.hpp>

#include <membrane/membrane.hpp>
#include <membrane/service_parse.hpp>

#include "health_check.hpp"
#include "ipv4.hpp"
#include "lb_maps.hpp"
#include "retry_timer.hpp"
#include "service_frontends.hpp"
#include "service_table.hpp"
#include "settings.hpp"
#include "source_ranges.hpp"
#include "udp_sweep.hpp"

extern "C" {
#include "bpf/lb_maps.h"
}

MEMBRANE_EMBEDDED_BPF(service_lb_bpf)
MEMBRANE_EMBEDDED_BPF(udp_sweep_bpf)
MEMBRANE_EMBEDDED_BPF(packet_lb_bpf)

namespace membrane::service_lb {
namespace {

constexpr const char* kServicesMap = "service_lb_services_v1";
constexpr const char* kBackendsMap = "service_lb_backends_v1";
constexpr const char* kReverseMap = "service_lb_reverse_v1";
constexpr const char* kAffinityMap = "service_lb_affinity_v1";
constexpr const char* kUdpMap = "service_lb_udp_v1";
constexpr const char* kNatMap = "service_lb_nat_v1";
constexpr const char* kNodeMap = "service_lb_node_v1";
constexpr const char* kPacketsMap = "service_lb_packets_v2";
constexpr const char* kSourceRangesMap = "service_lb_source_ranges_v1";
constexpr const char* kMaglevMap = "service_lb_maglev_v1";
constexpr const char* kHostMap = "service_lb_host_v1";

#ifdef SO_NETNS_COOKIE
constexpr int kSoNetnsCookie = SO_NETNS_COOKIE;
#else
constexpr int kSoNetnsCookie = 71;  // <asm-generic/socket.h>, Linux 5.14
#endif

// Asks for a recomputation on the next loop turn: a burst of changes costs one.
struct SyncRequested {
    static constexpr std::string_view kTopic = "service-lb.sync";
};

std::string_view scope_name(Scope scope) { return scope == Scope::outside ? "outside" : "node"; }

std::string_view kind_name(FrontendKind kind) {
    switch (kind) {
        case FrontendKind::cluster_ip: return "ClusterIP";
        case FrontendKind::external_ip: return "ExternalIP";
        case FrontendKind::load_balancer: return "LoadBalancer";
        case FrontendKind::node_port: return "NodePort";
    }
    return "?";
}

nlohmann::json backends_json(const std::vector<Backend>& backends) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& backend : backends) {
        list.push_back({{"address", backend.address}, {"port", backend.port}, {"node", backend.node}});
    }
    return list;
}

class ServiceLb final : public Module {
public:
    void start(Context& ctx) override {
        ctx_ = &ctx;
        settings_ = read_settings(ctx.config(), "module." + ctx.module_name());
        const std::vector<std::string> maps = {kServicesMap, kBackendsMap, kReverseMap, kAffinityMap, kUdpMap,
                                               kNatMap,      kNodeMap,     kPacketsMap, kMaglevMap,   kSourceRangesMap,
                                               kHostMap};
        // Every object declares these shared pins (lb_map_defs.h), so every
        // one is given the same sizes: one left at the declared size would
        // resize the pins back when it loads.
        const auto& size = settings_.map_sizes;
        const std::vector<BpfMapSize> sizes = {
            {kServicesMap, size.services}, {kBackendsMap, size.backends}, {kAffinityMap, size.affinity},
            {kNatMap, size.nat},           {kReverseMap, size.reverse},   {kUdpMap, size.udp},
            {kMaglevMap, size.maglev}};
        frontends_.set_node_ports(settings_.node_ports);
        frontends_.set_socket_lb(settings_.socket_lb);
        BpfObject& object =
            ctx.bpf().load({.name = "service-lb", .elf = service_lb_bpf(), .persistent_maps = maps}, sizes);
        // A changed maglev_table_size reloads the module: every table is made
        // anew at its first sync (a table's stamp holds its size).
        maps_.emplace(object.map_fd(kServicesMap), object.map_fd(kBackendsMap),
                      LbMaps::Capacity{size.services, size.backends},
                      LbMaps::Tables{object.map_fd(kMaglevMap), settings_.maglev_table_size, size.maglev});
        source_ranges_.emplace(object.map_fd(kSourceRangesMap));
        write_host_netns(object.map_fd(kHostMap));
        try {
            BpfObject& sweep =
                ctx.bpf().load({.name = "udp-sweep", .elf = udp_sweep_bpf(), .persistent_maps = maps}, sizes);
            udp_sweep_.emplace(sweep.program_fd("lb_sweep_udp"));
        } catch (const BpfError& error) {
            // Socket LB works without it; connected UDP clients then keep a removed backend.
            udp_sweep_problem_ = error.what();
            ctx.log().warn("connected UDP sockets will keep a removed backend (the UDP sweep needs "
                           "bpf_sock_destroy, Linux 6.5): {}", udp_sweep_problem_);
        }
        for (const auto kind : {service::kService, service::kEndpointSlice}) {
            for (const auto& info : ctx.model().objects(std::string(kind))) {
                remember(info.kind, info.namespace_, info.name, info.document);
            }
        }
        BpfObject& packet =
            ctx.bpf().load({.name = "packet-lb", .elf = packet_lb_bpf(), .persistent_maps = maps}, sizes);
        node_fd_ = packet.map_fd(kNodeMap);
        packets_fd_ = packet.map_fd(kPacketsMap);
        subscribe();
        // Publishing is safe from the timer's thread; the sync itself runs on the loop.
        retry_.emplace([&bus = ctx.bus()] { bus.publish(SyncRequested{}); }, std::chrono::seconds(1),
                       std::chrono::seconds(30));
        // The maps hold the services before a socket or packet meets the programs.
        sync();
        // Socket LB off: the hooks are not attached, and the previous generation's (a reload) or an
        // earlier run's are detached by the agent, as hooks this generation does not hold.
        if (settings_.socket_lb) {
            for (const char* program : {"lb_connect4", "lb_sendmsg4", "lb_recvmsg4", "lb_getpeername4"}) {
                ctx.bpf().attach_socket_hook(object, program);
            }
        }
        ctx.bpf().attach_stage(MBR_STAGE_SERVICE, packet, settings_.socket_lb ? "lb_service_stage" : "lb_stage_pods");
        ctx.add_method("Services", [this](const std::string&) { return services_json(); });
        ctx.add_method("Maps", [this](const std::string&) { return maps_json(); });
        ctx.add_method("Status", [this](const std::string&) { return status_json(); });
        ctx.log().info("{} services, {} frontends in the datapath; pods' connections translated {}",
                       frontends_.service_count(), maps_->frontend_count(),
                       settings_.socket_lb ? "at connect() (socket LB)" : "per packet (socket LB off)");
    }

    // The health check listeners' threads run this module's code: joined here, before it is unloaded.
    void stop() override {
        retry_.reset();  // joined first: it publishes nothing more
        subscriptions_.clear();
        health_checks_.reset();
    }

private:
    void subscribe() {
        auto& bus = ctx_->bus();
        subscriptions_.push_back(bus.subscribe<events::ObjectApplied>([this](const events::ObjectApplied& e) {
            if (!service::is_service_kind(e.kind)) return;
            remember(e.kind, e.namespace_, e.name, e.document);
            request();
        }));
        subscriptions_.push_back(bus.subscribe<events::ObjectDeleted>([this](const events::ObjectDeleted& e) {
            if (!service::is_service_kind(e.kind)) return;
            const auto key = e.namespace_ + "/" + e.name;
            e.kind == service::kService ? frontends_.erase_service(key) : frontends_.erase_slice(key);
            request();
        }));
        // NodePorts answer on this node's address.
        subscriptions_.push_back(bus.subscribe<events::NodeAdded>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::NodeUpdated>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<SyncRequested>([this](const SyncRequested&) {
            pending_ = false;
            sync();
        }));
    }

    // A document the agent checked when it was applied; one it cannot read
    // (a newer writer) is left out, loudly.
    void remember(const std::string& kind, const std::string& ns, const std::string& name, const std::string& document) {
        const auto key = ns + "/" + name;
        try {
            const auto json = nlohmann::json::parse(document);
            if (kind == service::kService) {
                frontends_.set_service(key, service::parse_service(json));
            } else {
                frontends_.set_slice(key, service::parse_endpoint_slice(json));
            }
        } catch (const std::exception& error) {
            kind == service::kService ? frontends_.erase_service(key) : frontends_.erase_slice(key);
            ctx_->log().error("{} {} is not served: {}", kind, key, error.what());
        }
    }

    void request() {
        if (pending_) return;
        pending_ = true;
        ctx_->bus().publish(SyncRequested{});
    }

    // This node, and the addresses its NodePorts answer on (nodeport_addresses).
    Topology topology() const {
        std::vector<std::string> addresses;
        for (const auto& node : ctx_->model().nodes()) {
            if (node.local && !node.ip.empty()) addresses.push_back(node.ip);
        }
        return Topology{ctx_->model().node_name(), node_port_addresses(settings_, addresses)};
    }

    // This node's address and the SNAT range, for the packet stage.
    // This network namespace's cookie: a 127.0.0.1 NodePort answers the node's own sockets only.
    static void write_host_netns(int fd) {
        const int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        std::uint64_t cookie = 0;
        socklen_t length = sizeof(cookie);
        const int got = probe < 0 ? -1 : getsockopt(probe, SOL_SOCKET, kSoNetnsCookie, &cookie, &length);
        const int err = errno;
        if (probe >= 0) close(probe);
        if (got != 0) {
            throw BpfError(std::string("cannot read this network namespace's cookie (SO_NETNS_COOKIE, Linux 5.14): ") +
                           std::strerror(err));
        }
        const std::uint32_t zero = 0;
        if (bpf_map_update_elem(fd, &zero, &cookie, BPF_ANY) != 0) {
            throw BpfError(std::string("cannot write the host map: ") + std::strerror(errno));
        }
    }

    // Written when it changes, not at every sync.
    void write_node() {
        service_lb_node node{};
        for (const auto& info : ctx_->model().nodes()) {
            in_addr address{};
            if (info.local && inet_pton(AF_INET, info.ip.c_str(), &address) == 1) node.address = address.s_addr;
        }
        node.snat_low = settings_.snat_ports.low;
        node.snat_high = settings_.snat_ports.high;
        if (node_written_ && std::memcmp(&*node_written_, &node, sizeof node) == 0) return;
        const std::uint32_t zero = 0;
        if (bpf_map_update_elem(node_fd_, &zero, &node, BPF_ANY) != 0) {
            throw BpfError(std::string("cannot write the node map: ") + std::strerror(errno));
        }
        node_written_ = node;
    }

    // The maps made to hold what the services serve: only the services that
    // changed since the last sync (ServiceFrontends, LbMaps::update), or
    // every one when the maps' own record cannot be trusted (the first sync,
    // a failed one, another writer since).
    void sync() {
        const auto began = std::chrono::steady_clock::now();
        try {
            datapath_error_.clear();
            write_node();
            frontends_.set_topology(topology());
            auto changes = frontends_.take_changes();
            for (const auto& [key, problem] : changes.new_problems) ctx_->log().warn("service {}: {}", key, problem);
            // Until a sync succeeds, these are not in the datapath as applied (a refused sync writes nothing).
            not_in_datapath_.insert(changes.services.begin(), changes.services.end());
            // After a sync that failed, everything: what it took from frontends_ may not be written.
            std::optional<LbMaps::Written> written;
            if (!std::exchange(resync_, true)) {
                // A frontend's source ranges before its flag, and gone after it.
                source_ranges_->want(changes.services, changes.frontends);
                written = maps_->update(changes.services, changes.frontends);
            }
            if (!written) {
                const auto all = frontends_.served();
                source_ranges_->want_all(all);
                written = maps_->sync(all);
            }
            source_ranges_->prune();
            resync_ = false;
            not_in_datapath_.clear();
            retry_->succeeded();
            last_sync_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
            if (written->frontends_changed + written->frontends_deleted + written->tables_written +
                    written->tables_deleted > 0) {
                ctx_->log().info("{} frontends written, {} deleted, {} Maglev tables made, {} deleted in {:.1f} ms "
                                 "({} frontends, {} tables in the datapath)",
                                 written->frontends_changed, written->frontends_deleted, written->tables_written,
                                 written->tables_deleted, last_sync_ms_, maps_->frontend_count(),
                                 maps_->table_count());
            }
            if (written->backends_deleted > 0) sweep_udp();
        } catch (const std::exception& error) {
            datapath_error_ = error.what();
            // Tried again with nothing changed, too: what failed may pass later (memory, a pin another filled).
            const auto retry_in = std::chrono::duration<double>(retry_->arm()).count();
            ctx_->log().error("the datapath does not hold every service: {} (tried again in {:.0f} s)",
                              datapath_error_, retry_in);
            // Narrowed source ranges take effect even so: an entry no service
            // wants goes, and a flag left without entries drops (fails closed).
            try {
                source_ranges_->prune();
            } catch (const std::exception& also) {
                ctx_->log().error("source ranges not pruned: {}", also.what());
            }
        }
        serve_health_checks();
    }

    // Each healthCheckNodePort answers with its service's ready endpoints on
    // this node (kube-proxy's count), and 503 while the datapath misses a service.
    void serve_health_checks() {
        std::map<std::uint16_t, HealthCheck> checks;
        std::map<std::uint16_t, std::string> service_of_port;
        std::map<std::string, std::string> clashes;
        for (const auto& [key, svc] : frontends_.services()) {
            if (svc.health_check_node_port == 0) continue;
            const auto local = frontends_.local_ready_endpoints(key, ctx_->model().node_name());
            const auto [at, fresh] = checks.emplace(
                svc.health_check_node_port, HealthCheck{svc.namespace_, svc.name, static_cast<std::uint32_t>(local)});
            if (fresh) service_of_port[svc.health_check_node_port] = key;
            if (!fresh) {
                clashes[key] = "healthCheckNodePort " + std::to_string(svc.health_check_node_port) +
                               " is already service " + service_of_port[svc.health_check_node_port] + "'s";
            }
        }
        if (!health_checks_) health_checks_.emplace();
        health_checks_->set(checks, datapath_error_.empty());
        health_ports_ = std::move(service_of_port);
        health_clashes_ = std::move(clashes);
        // Said once, until it changes (a port that opens later, on the server's retry, is just served).
        auto now = health_problems();
        for (const auto& [key, problem] : now) {
            if (const auto old = told_health_problems_.find(key); old == told_health_problems_.end() || old->second != problem) {
                ctx_->log().warn("service {}: {}", key, problem);
            }
        }
        told_health_problems_ = std::move(now);
    }

    // Service -> why its healthCheckNodePort is not served, now.
    std::map<std::string, std::string> health_problems() const {
        std::map<std::string, std::string> out = health_clashes_;
        if (!health_checks_) return out;
        for (const auto& [port, problem] : health_checks_->problems()) {
            if (const auto service = health_ports_.find(port); service != health_ports_.end()) {
                out[service->second] = "healthCheckNodePort " + std::to_string(port) + " is not served: " + problem;
            }
        }
        return out;
    }

    // Destroys the connected UDP sockets whose backend a sync removed, in
    // every namespace a process of this node may have connected from.
    void sweep_udp() {
        if (!udp_sweep_) return;
        const auto began = std::chrono::steady_clock::now();
        std::vector<std::string> namespaces;
        for (const auto& endpoint : ctx_->model().endpoints()) {
            if (!endpoint.netns.empty()) namespaces.push_back(endpoint.netns);
        }
        const auto report = udp_sweep_->sweep(namespaces);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
        for (const auto& error : report.errors) ctx_->log().warn("UDP sweep: {}", error);
        for (const auto& socket : report.sockets) {
            if (socket.result == 0) {
                ++udp_sockets_destroyed_;
                ctx_->log().info("destroyed a UDP socket connected to service {} through removed backend {}",
                                 socket.service, socket.backend);
            } else {
                ctx_->log().warn("cannot destroy a UDP socket connected to service {} through removed backend {}: {}",
                                 socket.service, socket.backend, std::strerror(-socket.result));
            }
        }
        ctx_->log().debug("UDP sweep of {} network namespaces in {:.1f} ms", report.namespaces, ms);
    }

    // Service -> why it is not served in full: the datapath's (a refused sync,
    // e.g. a map too small), its frontends', then its health check's.
    std::map<std::string, std::string> problems() const {
        auto out = frontends_.problems();
        for (const auto& key : not_in_datapath_) {
            if (!frontends_.built().contains(key)) continue;  // deleted: nothing to serve
            auto& text = out[key];
            text = "not in the datapath as applied: " + datapath_error_ + (text.empty() ? "" : "; ") + text;
        }
        for (const auto& [key, problem] : health_problems()) {
            auto& text = out[key];
            text += (text.empty() ? "" : "; ") + problem;
        }
        return out;
    }

    std::string services_json() const {
        const auto problems = this->problems();
        nlohmann::json list = nlohmann::json::array();
        for (const auto& [key, service_frontends] : frontends_.built()) {
            nlohmann::json frontends = nlohmann::json::array();
            for (const auto& frontend : service_frontends) {
                frontends.push_back({{"kind", kind_name(frontend.kind)},
                                     {"scope", scope_name(frontend.scope)},
                                     {"address", frontend.address},
                                     {"port", frontend.port},
                                     {"protocol", service::protocol_name(frontend.protocol)},
                                     {"port_name", frontend.port_name},
                                     {"backends", backends_json(frontend.backends)},
                                     {"drop_when_empty", frontend.drop_when_empty},
                                     {"affinity_timeout", frontend.affinity_timeout}});
            }
            const auto problem = problems.find(key);
            list.push_back({{"service", key},
                            {"frontends", frontends},
                            {"problem", problem == problems.end() ? "" : problem->second}});
        }
        return nlohmann::json{{"services", list}}.dump();
    }

    std::string maps_json() const {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& frontend : maps_->read_frontends()) {
            list.push_back({{"address", frontend.address},
                            {"port", frontend.port},
                            {"protocol", service::protocol_name(frontend.protocol)},
                            {"scope", scope_name(frontend.scope)},
                            {"service_id", frontend.service_id},
                            {"flags", frontend.flags},
                            {"affinity_timeout", frontend.affinity_timeout},
                            {"source_ranges", source_ranges_->held_for(ipv4_address(frontend.address), frontend.port,
                                                                       static_cast<std::uint8_t>(frontend.protocol))},
                            {"backends", backends_json(frontend.backends)}});
        }
        return nlohmann::json{{"frontends", list}}.dump();
    }

    // The packet stage's counters, summed over CPUs (enum service_lb_packet_counter).
    nlohmann::json packet_counters() const {
        static constexpr std::array<const char*, SERVICE_LB_PACKET_COUNTERS> kNames = {
            "translated", "snat", "replied", "dropped_no_backend", "dropped_no_snat_port", "reply_without_route",
            "dropped_backend_unreachable", "dropped_source_range"};
        const int cpus = libbpf_num_possible_cpus();
        nlohmann::json out = nlohmann::json::object();
        std::vector<std::uint64_t> values(cpus > 0 ? static_cast<std::size_t>(cpus) : 1);
        for (std::uint32_t counter = 0; counter < SERVICE_LB_PACKET_COUNTERS; ++counter) {
            std::uint64_t total = 0;
            if (bpf_map_lookup_elem(packets_fd_, &counter, values.data()) == 0) {
                for (const auto value : values) total += value;
            }
            out[kNames[counter]] = total;
        }
        return out;
    }

    std::string status_json() const {
        return nlohmann::json{{"services", frontends_.service_count()},
                              {"endpoint_slices", frontends_.slice_count()},
                              {"frontends", maps_->frontend_count()},
                              {"map_entries", maps_->slot_count()},
                              {"backends", maps_->backend_count()},
                              {"socket_lb", settings_.socket_lb},
                              {"node_port_range", range_text(settings_.node_ports)},
                              {"snat_port_range", range_text(settings_.snat_ports)},
                              {"maglev_tables", maps_->table_count()},
                              {"maglev_table_size", maps_->table_size()},
                              {"maglev_table_bytes",
                               maps_->table_count() * SERVICE_LB_MAGLEV_PAIRS(maps_->table_size()) *
                                   sizeof(service_lb_maglev_pair)},
                              {"packets", packet_counters()},
                              {"last_sync_ms", last_sync_ms_},
                              {"health_checks", health_ports_.size() - (health_checks_ ? health_checks_->problems().size() : 0)},
                              {"source_ranges", source_ranges_->size()},
                              {"problems", problems()},
                              {"datapath_error", datapath_error_},
                              {"udp_sweep", udp_sweep_ ? "on" : "off: " + udp_sweep_problem_},
                              {"udp_sockets_destroyed", udp_sockets_destroyed_}}
            .dump();
    }

    Context* ctx_ = nullptr;
    Settings settings_;
    int node_fd_ = -1;
    std::optional<service_lb_node> node_written_;
    int packets_fd_ = -1;
    std::optional<LbMaps> maps_;
    std::optional<SourceRanges> source_ranges_;
    bool resync_ = false;  // the last sync failed: write everything
    std::optional<UdpSweep> udp_sweep_;
    std::optional<HealthCheckServer> health_checks_;
    std::optional<RetryTimer> retry_;  // after a failed sync
    std::map<std::uint16_t, std::string> health_ports_;      // healthCheckNodePort -> its service
    std::map<std::string, std::string> health_clashes_;      // service -> the port another service has
    std::map<std::string, std::string> told_health_problems_;  // as last logged
    std::string udp_sweep_problem_;  // why there is none
    std::uint64_t udp_sockets_destroyed_ = 0;
    ServiceFrontends frontends_;
    std::vector<Subscription> subscriptions_;
    bool pending_ = false;
    double last_sync_ms_ = 0;
    std::string datapath_error_;
    std::set<std::string> not_in_datapath_;  // services changed since the last sync that succeeded
};

}  // namespace
}  // namespace membrane::service_lb

MEMBRANE_MODULE(membrane::service_lb::ServiceLb, "service-lb")
