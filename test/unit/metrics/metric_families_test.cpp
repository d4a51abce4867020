// The agent's figures as metric families: names, types, labels and values,
// Prometheus' naming conventions for every family, and the README listing
// every name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <prometheus/check_names.h>
#include <prometheus/text_serializer.h>

#include "metrics/metric_families.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Figures with something in every family.
AgentFigures full_figures() {
    AgentFigures f;
    f.taken = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
    f.datapath = std::vector<StatCounter>{{"entry_from_netdev", 12}, {"drop_policy", 3}, {"reason_40", 1}};
    f.endpoints_by_state = {{"ready", 2}, {"disconnected", 1}};
    f.identities_reserved = 5;
    f.identities_allocated = 7;
    f.nodes = 3;
    f.modules = {{"policy-l3l4", ModuleState::running, 2, 0},
                 {"gone", std::nullopt, 1, 4},
                 {"routing-vxlan", ModuleState::failed, 0, 1}};
    StoreFigures store;
    store.state = StoreState::Connected;
    store.connects = 2;
    store.resyncs = 1;
    store.revision = 42;
    store.contact_age_seconds = 0.25;
    f.store = store;
    f.events_lost = std::map<std::string, std::uint64_t>{{"drop", 11}, {"verdict", 0}, {"trace", 0}};
    f.policy_verdicts = std::map<std::pair<std::string, std::string>, std::uint64_t>{
        {{"ingress", "allowed"}, 5}, {{"ingress", "denied"}, 2}, {{"egress", "allowed"}, 1}, {{"egress", "denied"}, 0}};
    return f;
}

const MetricFamily* find_family(const std::vector<MetricFamily>& families, const std::string& name) {
    for (const auto& family : families) {
        if (family.name == name) return &family;
    }
    return nullptr;
}

// "label=value,label=value" -> the sample's value (counter or gauge).
std::map<std::string, double> samples(const MetricFamily& family) {
    std::map<std::string, double> out;
    for (const auto& metric : family.metric) {
        std::string key;
        for (const auto& label : metric.label) key += (key.empty() ? "" : ",") + label.name + "=" + label.value;
        out[key] = family.type == MetricType::Counter ? metric.counter.value : metric.gauge.value;
    }
    return out;
}

TEST(MetricFamilies, DatapathCountersByReasonAsMembranectlNamesThem) {
    const auto families = metric_families(full_figures());
    const MetricFamily* packets = find_family(families, "membrane_datapath_packets_total");
    ASSERT_NE(packets, nullptr);
    EXPECT_EQ(packets->type, MetricType::Counter);
    EXPECT_EQ(samples(*packets), (std::map<std::string, double>{
                                     {"reason=entry_from_netdev", 12}, {"reason=drop_policy", 3}, {"reason=reason_40", 1}}));
}

TEST(MetricFamilies, NoDatapathFamilyWhenItsMapCouldNotBeRead) {
    auto figures = full_figures();
    figures.datapath.reset();
    EXPECT_EQ(find_family(metric_families(figures), "membrane_datapath_packets_total"), nullptr);
}

TEST(MetricFamilies, EndpointsByStateWithEveryKnownStateIdentitiesByKindAndNodes) {
    auto figures = full_figures();
    figures.endpoints_by_state = {{"ready", 4}};
    const auto families = metric_families(figures);
    const MetricFamily* endpoints = find_family(families, "membrane_endpoints");
    ASSERT_NE(endpoints, nullptr);
    EXPECT_EQ(endpoints->type, MetricType::Gauge);
    EXPECT_EQ(samples(*endpoints), (std::map<std::string, double>{{"state=ready", 4}, {"state=disconnected", 0}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_identities")),
              (std::map<std::string, double>{{"kind=reserved", 5}, {"kind=allocated", 7}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_nodes")), (std::map<std::string, double>{{"", 3}}));
}

TEST(MetricFamilies, ModuleStateIsOneHotAndCountersOutliveTheModule) {
    const auto families = metric_families(full_figures());
    const MetricFamily* state = find_family(families, "membrane_module_state");
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(samples(*state), (std::map<std::string, double>{
                                   {"module=policy-l3l4,state=loading", 0},
                                   {"module=policy-l3l4,state=running", 1},
                                   {"module=policy-l3l4,state=stopped", 0},
                                   {"module=policy-l3l4,state=failed", 0},
                                   {"module=routing-vxlan,state=loading", 0},
                                   {"module=routing-vxlan,state=running", 0},
                                   {"module=routing-vxlan,state=stopped", 0},
                                   {"module=routing-vxlan,state=failed", 1},
                               }))
        << "an unloaded module has no state";
    EXPECT_EQ(samples(*find_family(families, "membrane_module_reloads_total")),
              (std::map<std::string, double>{{"module=policy-l3l4", 2}, {"module=gone", 1}, {"module=routing-vxlan", 0}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_module_quarantines_total")),
              (std::map<std::string, double>{{"module=policy-l3l4", 0}, {"module=gone", 4}, {"module=routing-vxlan", 1}}));
}

TEST(MetricFamilies, TheStoreOnlyWithAStore) {
    const auto families = metric_families(full_figures());
    EXPECT_EQ(samples(*find_family(families, "membrane_kvstore_state")),
              (std::map<std::string, double>{{"state=connecting", 0},
                                             {"state=connected", 1},
                                             {"state=disconnected", 0},
                                             {"state=closed", 0}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_kvstore_connects_total")), (std::map<std::string, double>{{"", 2}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_kvstore_watch_resyncs_total")),
              (std::map<std::string, double>{{"", 1}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_kvstore_revision")), (std::map<std::string, double>{{"", 42}}));
    EXPECT_EQ(samples(*find_family(families, "membrane_kvstore_contact_age_seconds")),
              (std::map<std::string, double>{{"", 0.25}}));

    auto figures = full_figures();
    figures.store->contact_age_seconds.reset();
    EXPECT_EQ(find_family(metric_families(figures), "membrane_kvstore_contact_age_seconds"), nullptr)
        << "no age before the store first answered";
    figures.store.reset();
    for (const auto& family : metric_families(figures)) EXPECT_FALSE(family.name.starts_with("membrane_kvstore_"));
}

TEST(MetricFamilies, TheSnapshotSaysWhenItWasTaken) {
    const auto families = metric_families(full_figures());
    EXPECT_EQ(samples(*find_family(families, "membrane_metrics_snapshot_timestamp_seconds")),
              (std::map<std::string, double>{{"", 1'700'000'000}}));
}

TEST(MetricFamilies, PolicyVerdictsByDirection) {
    const auto families = metric_families(full_figures());
    const auto* verdicts = find_family(families, "membrane_policy_verdicts_total");
    ASSERT_NE(verdicts, nullptr);
    EXPECT_EQ(verdicts->type, MetricType::Counter);
    EXPECT_EQ(samples(*verdicts), (std::map<std::string, double>{{"direction=egress,verdict=allowed", 1},
                                                                 {"direction=egress,verdict=denied", 0},
                                                                 {"direction=ingress,verdict=allowed", 5},
                                                                 {"direction=ingress,verdict=denied", 2}}));
    auto unread = full_figures();
    unread.policy_verdicts.reset();
    EXPECT_EQ(find_family(metric_families(unread), "membrane_policy_verdicts_total"), nullptr);
}

TEST(MetricFamilies, EveryFamilyFollowsPrometheusNaming) {
    const std::regex snake_case("[a-z][a-z0-9_]*");
    for (const auto& family : metric_families(full_figures())) {
        SCOPED_TRACE(family.name);
        EXPECT_TRUE(family.name.starts_with("membrane_"));
        EXPECT_TRUE(prometheus::CheckMetricName(family.name));
        EXPECT_TRUE(std::regex_match(family.name, snake_case));
        EXPECT_EQ(family.type == MetricType::Counter, family.name.ends_with("_total"))
            << "counters, and only counters, end in _total";
        EXPECT_FALSE(family.help.empty());
        EXPECT_EQ(family.help.find('\n'), std::string::npos);
        for (const auto& metric : family.metric) {
            for (const auto& label : metric.label) {
                EXPECT_TRUE(prometheus::CheckLabelName(label.name)) << label.name;
                EXPECT_TRUE(std::regex_match(label.name, snake_case)) << label.name;
            }
        }
    }
}

TEST(MetricFamilies, TheTextFormatCarriesTypesAndLabels) {
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, metric_families(full_figures()));
    EXPECT_THAT(text.str(), HasSubstr("# TYPE membrane_datapath_packets_total counter\n"));
    EXPECT_THAT(text.str(), HasSubstr("membrane_datapath_packets_total{reason=\"drop_policy\"} 3\n"));
    EXPECT_THAT(text.str(), HasSubstr("membrane_module_state{module=\"policy-l3l4\",state=\"running\"} 1\n"));
    EXPECT_THAT(text.str(), HasSubstr("membrane_endpoints{state=\"ready\"} 2\n"));
}

TEST(MetricFamilies, TheReadmeListsEveryName) {
    std::ifstream in(std::string(MEMBRANE_SOURCE_DIR) + "/README.md");
    ASSERT_TRUE(in) << "cannot read README.md";
    std::stringstream readme;
    readme << in.rdbuf();
    for (const auto& family : metric_families(full_figures())) {
        EXPECT_THAT(readme.str(), HasSubstr("`" + family.name + "`")) << "README.md does not list " << family.name;
    }
}

}  // namespace
}  // namespace membrane::kernel::test
