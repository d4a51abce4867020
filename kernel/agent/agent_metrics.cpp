// The agent's side of the metrics endpoint ([metrics]): its figures, copied
// on the loop thread for kernel/metrics, which serves them.
#include "agent/agent.hpp"
#include "bpf/stats_map.hpp"
#include "log/logging.hpp"
#include "metrics/metrics_server.hpp"

namespace membrane::kernel {

void Agent::open_metrics() {
    if (!config_.metrics) return;
    const std::string& address = config_.metrics->address;
    try {
        metrics_ = std::make_unique<MetricsServer>(io_, address, [this] { return metric_figures(); },
                                                   make_logger("metrics"));
    } catch (const MetricsError& e) {
        // Metrics are for watching the node, not for running it: a taken
        // port must not take pod networking down with it (nor, under
        // systemd's Restart=, put the agent in a restart loop). The log says
        // so; the agent serves everything else.
        log_->error("{}; the agent runs on without a metrics endpoint", e.what());
        return;
    }
    log_->info("metrics at http://{}/metrics", address);
}

AgentFigures Agent::metric_figures() const {
    AgentFigures figures;
    figures.taken = std::chrono::system_clock::now();
    // The same reader as `membranectl stats` (Agent::stats()).
    try {
        if (registry_) figures.datapath = stats();
    } catch (const ControlError& e) {
        log_->debug("metrics without datapath counters: {}", e.what());
    }
    if (monitor_) {
        try {
            const auto lost = monitor_->lost();
            figures.events_lost = {{"drop", lost[MBR_EVENT_DROP]},
                                   {"verdict", lost[MBR_EVENT_VERDICT]},
                                   {"trace", lost[MBR_EVENT_TRACE]}};
        } catch (const BpfError& e) {
            log_->debug("metrics without the monitor's lost events: {}", e.what());
        }
    }
    if (registry_) {
        try {
            const auto counts = read_percpu_counters(registry_->core_map_fd(MBR_MAP_POLICY_VERDICTS), MBR_VERDICT_COUNTERS);
            figures.policy_verdicts = std::map<std::pair<std::string, std::string>, std::uint64_t>{
                {{"ingress", "allowed"}, counts.at(MBR_VERDICT_INGRESS_ALLOWED)},
                {{"ingress", "denied"}, counts.at(MBR_VERDICT_INGRESS_DENIED)},
                {{"egress", "allowed"}, counts.at(MBR_VERDICT_EGRESS_ALLOWED)},
                {{"egress", "denied"}, counts.at(MBR_VERDICT_EGRESS_DENIED)}};
        } catch (const BpfError& e) {
            log_->debug("metrics without the policy verdicts: {}", e.what());
        }
    }
    if (endpoints_) {
        for (const auto& endpoint : endpoints_->list_endpoints()) ++figures.endpoints_by_state[endpoint.state];
    }
    if (identities_) {
        for (const auto& identity : identities_->list()) {
            ++(identity.reserved ? figures.identities_reserved : figures.identities_allocated);
        }
    }
    if (nodes_) figures.nodes = nodes_->nodes().size();
    if (host_) {
        std::map<std::string, ModuleFigures> modules;
        for (const auto& [name, counters] : host_->counters()) {
            modules[name] = ModuleFigures{name, std::nullopt, counters.reloads, counters.quarantines};
        }
        for (const auto& module : host_->list()) {
            auto& entry = modules[module.name];
            entry.name = module.name;
            entry.state = module.state;
        }
        for (auto& [name, module] : modules) figures.modules.push_back(std::move(module));
    }
    if (store_) {
        const StoreStatus status = store_->status();
        StoreFigures store;
        store.state = status.state;
        store.connects = status.connects;
        store.resyncs = status.resyncs;
        store.revision = status.revision;
        if (status.last_contact) {
            store.contact_age_seconds =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - *status.last_contact).count();
        }
        figures.store = store;
    }
    return figures;
}

}  // namespace membrane::kernel
