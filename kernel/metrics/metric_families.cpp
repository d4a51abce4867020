#include "metrics/metric_families.hpp"

#include <string_view>
#include <utility>

#include "membrane/model.hpp"

namespace membrane::kernel {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using MetricLabels = std::vector<ClientMetric::Label>;

MetricFamily family_of(std::string name, std::string help, MetricType type) {
    return MetricFamily{std::move(name), std::move(help), type, {}};
}

void add_sample(MetricFamily& family, MetricLabels labels, double value) {
    ClientMetric metric;
    metric.label = std::move(labels);
    if (family.type == MetricType::Counter) {
        metric.counter.value = value;
    } else {
        metric.gauge.value = value;
    }
    family.metric.push_back(std::move(metric));
}

constexpr ModuleState kListedModuleStates[] = {ModuleState::loading, ModuleState::running, ModuleState::stopped,
                                               ModuleState::failed};
constexpr StoreState kStoreStates[] = {StoreState::Connecting, StoreState::Connected, StoreState::Disconnected,
                                       StoreState::Closed};

void add_datapath(std::vector<MetricFamily>& out, const std::vector<StatCounter>& counters) {
    auto packets = family_of("membrane_datapath_packets_total",
                             "Packets the datapath counted, by reason (the names of membranectl stats), summed over CPUs",
                             MetricType::Counter);
    for (const auto& counter : counters) {
        add_sample(packets, {{"reason", counter.name}}, static_cast<double>(counter.packets));
    }
    out.push_back(std::move(packets));
}

void add_model(std::vector<MetricFamily>& out, const AgentFigures& figures) {
    auto endpoints = family_of("membrane_endpoints", "Endpoints (pods) on this node, by state", MetricType::Gauge);
    // Every state this agent knows, at 0 when no endpoint is in it.
    std::map<std::string, std::uint64_t> by_state;
    for (const auto state : {EndpointState::ready, EndpointState::disconnected}) {
        by_state[std::string(endpoint_state_name(state))] = 0;
    }
    for (const auto& [state, count] : figures.endpoints_by_state) by_state[state] += count;
    for (const auto& [state, count] : by_state) add_sample(endpoints, {{"state", state}}, static_cast<double>(count));
    out.push_back(std::move(endpoints));

    auto identities = family_of("membrane_identities",
                                "Security identities this node knows: reserved ones, and those allocated for label sets",
                                MetricType::Gauge);
    add_sample(identities, {{"kind", "allocated"}}, static_cast<double>(figures.identities_allocated));
    add_sample(identities, {{"kind", "reserved"}}, static_cast<double>(figures.identities_reserved));
    out.push_back(std::move(identities));

    auto nodes = family_of("membrane_nodes", "Nodes this node knows, itself included", MetricType::Gauge);
    add_sample(nodes, {}, static_cast<double>(figures.nodes));
    out.push_back(std::move(nodes));
}

void add_modules(std::vector<MetricFamily>& out, const std::vector<ModuleFigures>& modules) {
    auto state = family_of("membrane_module_state", "1 for the state each listed module is in, 0 for the others",
                           MetricType::Gauge);
    auto reloads = family_of("membrane_module_reloads_total",
                             "Times a new generation of the module replaced the running one", MetricType::Counter);
    auto quarantines = family_of("membrane_module_quarantines_total",
                                 "Times the module was stopped for throwing (a handler, reconfigure)",
                                 MetricType::Counter);
    for (const auto& module : modules) {
        if (module.state) {
            for (const auto candidate : kListedModuleStates) {
                add_sample(state, {{"module", module.name}, {"state", std::string(module_state_name(candidate))}},
                           candidate == *module.state ? 1.0 : 0.0);
            }
        }
        add_sample(reloads, {{"module", module.name}}, static_cast<double>(module.reloads));
        add_sample(quarantines, {{"module", module.name}}, static_cast<double>(module.quarantines));
    }
    out.push_back(std::move(state));
    out.push_back(std::move(reloads));
    out.push_back(std::move(quarantines));
}

void add_store(std::vector<MetricFamily>& out, const StoreFigures& store) {
    auto state = family_of("membrane_kvstore_state", "1 for the cluster store connection's state, 0 for the others",
                           MetricType::Gauge);
    for (const auto candidate : kStoreStates) {
        add_sample(state, {{"state", store_state_name(candidate)}}, candidate == store.state ? 1.0 : 0.0);
    }
    out.push_back(std::move(state));

    auto connects = family_of("membrane_kvstore_connects_total",
                              "Successful connections to the cluster store (1 + reconnects)", MetricType::Counter);
    add_sample(connects, {}, static_cast<double>(store.connects));
    out.push_back(std::move(connects));

    auto resyncs = family_of("membrane_kvstore_watch_resyncs_total",
                             "Watches that fell behind a compaction and listed their prefix again",
                             MetricType::Counter);
    add_sample(resyncs, {}, static_cast<double>(store.resyncs));
    out.push_back(std::move(resyncs));

    auto revision = family_of("membrane_kvstore_revision", "The newest cluster store revision this node has seen",
                              MetricType::Gauge);
    add_sample(revision, {}, static_cast<double>(store.revision));
    out.push_back(std::move(revision));

    if (store.contact_age_seconds) {
        auto age = family_of("membrane_kvstore_contact_age_seconds",
                             "Seconds since the cluster store last answered anything: how stale the watches may be",
                             MetricType::Gauge);
        add_sample(age, {}, *store.contact_age_seconds);
        out.push_back(std::move(age));
    }
}

}  // namespace

std::vector<MetricFamily> metric_families(const AgentFigures& figures) {
    std::vector<MetricFamily> out;
    auto taken = family_of("membrane_metrics_snapshot_timestamp_seconds",
                           "Unix time the agent's loop took these figures (refreshed every second)",
                           MetricType::Gauge);
    add_sample(taken, {},
               std::chrono::duration<double>(figures.taken.time_since_epoch()).count());
    out.push_back(std::move(taken));
    if (figures.datapath) add_datapath(out, *figures.datapath);
    add_model(out, figures);
    add_modules(out, figures.modules);
    if (figures.store) add_store(out, *figures.store);
    if (figures.events_lost) {
        auto lost = family_of("membrane_monitor_events_lost_total",
                              "Flow monitor events the datapath could not report (its ring buffer was full), by type",
                              MetricType::Counter);
        for (const auto& [type, count] : *figures.events_lost) {
            add_sample(lost, {{"type", type}}, static_cast<double>(count));
        }
        out.push_back(std::move(lost));
    }
    if (figures.policy_verdicts) {
        auto verdicts = family_of("membrane_policy_verdicts_total",
                                  "Network-policy verdicts of this node's policy stages, by direction: new "
                                  "connections allowed, packets denied",
                                  MetricType::Counter);
        for (const auto& [key, count] : *figures.policy_verdicts) {
            add_sample(verdicts, {{"direction", key.first}, {"verdict", key.second}}, static_cast<double>(count));
        }
        out.push_back(std::move(verdicts));
    }
    return out;
}

}  // namespace membrane::kernel
