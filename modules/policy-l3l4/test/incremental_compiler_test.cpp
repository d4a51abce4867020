// IncrementalCompiler against its reference: after every change, what it
// holds is what compile() makes of the same inputs, field by field; and a
// change recomputes only the endpoints it affects.
#include "incremental_compiler.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include <membrane/policy_parse.hpp>

namespace policy_l3l4::incremental_test {
namespace {

namespace mp = membrane::policy;
using membrane::Labels;

// The first field where two results differ, "" when they are equal.
std::string first_difference(const Compiled& got, const Compiled& want) {
    std::ostringstream out;
    if (got.rules != want.rules) {
        out << "rules: " << got.rules.size() << " vs " << want.rules.size() << " entries";
        for (const auto& [key, verdict] : want.rules) {
            const auto it = got.rules.find(key);
            if (it == got.rules.end() || !(it->second == verdict)) {
                out << "; first wanted and not held: endpoint " << key.endpoint << " dir " << int{key.direction} << " identity "
                    << key.identity << " proto " << int{key.protocol} << " port " << key.port;
                break;
            }
        }
        for (const auto& [key, verdict] : got.rules) {
            if (!want.rules.contains(key)) {
                out << "; first held and not wanted: endpoint " << key.endpoint << " identity " << key.identity;
                break;
            }
        }
        return out.str();
    }
    if (got.endpoints != want.endpoints) return "endpoints (enforcement)";
    if (got.selected_by != want.selected_by) return "selected_by";
    if (got.origins != want.origins) return "origins";
    if (got.warnings != want.warnings) {
        out << "warnings: " << got.warnings.size() << " vs " << want.warnings.size();
        return out.str();
    }
    if (got.cidrs != want.cidrs) return "cidrs";
    if (got.cidr_numbers != want.cidr_numbers) return "cidr_numbers";
    return got == want ? "" : "operator== (a field this helper does not name)";
}

// ---- A random cluster and random changes of it ----

const std::vector<std::string> kNamespaces = {"default", "shop", "ops"};
const std::vector<std::string> kApps = {"web", "db", "api", "cache"};
const std::vector<std::string> kPrefixes = {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "20.1.1.1/32"};

class RandomCluster {
public:
    explicit RandomCluster(unsigned seed) : rng_(seed) {
        in.identities.push_back({MBR_IDENTITY_HOST, {{"reserved:host", ""}}, true, 0});
        in.identities.push_back({MBR_IDENTITY_WORLD, {{"reserved:world", ""}}, true, 0});
        for (const auto& ns : kNamespaces) {
            if (chance(0.7)) in.namespaces[ns] = {{"team", pick<std::string>({"a", "b"})}};
        }
        for (int i = 0; i < 8; ++i) create_endpoint();
        for (int i = 0; i < 4; ++i) add_identity();
        for (int i = 0; i < 6; ++i) put_policy();
        flatten();
        changes = {};
    }

    Inputs in;
    Changes changes;  // since the last take()

    // One random change of the cluster, recorded in `changes`.
    void change() {
        const int what = roll(100);
        if (what < 12) create_endpoint();
        else if (what < 26) relabel_endpoint();
        else if (what < 38) delete_endpoint();
        else if (what < 52) add_identity();
        else if (what < 62) remove_identity();
        else if (what < 74) put_policy();
        else if (what < 82) tweak_policy();
        else if (what < 92) delete_policy();
        else if (what < 95) relabel_namespace();
        else if (what < 98) change_remote_ports();
        else in.mode = pick<Enforcement>({Enforcement::selected, Enforcement::selected, Enforcement::always, Enforcement::never});
        flatten();
    }

    int roll(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    template <class T>
    T pick(const std::vector<T>& from) { return from[static_cast<std::size_t>(roll(static_cast<int>(from.size())))]; }

private:
    Labels random_pod_labels(bool remote_too) {
        Labels labels{{"k8s:app", pick(kApps)}};
        if (chance(0.5)) labels["k8s:tier"] = pick<std::string>({"front", "back"});
        std::vector<std::string> namespaces = kNamespaces;
        if (remote_too) namespaces.push_back("remote");
        labels[std::string(mp::kPodNamespaceLabel)] = pick(namespaces);
        return labels;
    }

    // The identity of a label set: an existing one, or a new one (an IdentityAdded).
    std::uint32_t identity_for(const Labels& labels) {
        for (const auto& identity : in.identities) {
            if (identity.labels == labels) return identity.id;
        }
        const std::uint32_t id = next_identity_++;
        in.identities.push_back({id, labels, false, 1});
        changes.identities.insert(id);
        return id;
    }

    void create_endpoint() {
        membrane::EndpointInfo endpoint;
        // Now and then an id past 32 bits, which is never enforced (a warning).
        endpoint.id = chance(0.03) ? (std::uint64_t{1} << 32) + next_endpoint_++ : next_endpoint_++;
        endpoint.labels = random_pod_labels(false);
        endpoint.identity = identity_for(endpoint.labels);
        if (chance(0.5)) {
            std::vector<membrane::ContainerPort> ports;
            const std::vector<membrane::ContainerPort> choices = {
                {"http", 8080, 6}, {"http", 80, 6}, {"dns", 53, 17}, {"metrics", 9090, 6}};
            for (const auto& port : choices) {
                if (chance(0.4)) ports.push_back(port);
            }
            if (!ports.empty()) in.endpoint_ports[endpoint.id] = ports;
        }
        in.endpoints.push_back(endpoint);
        changes.endpoints.insert(endpoint.id);
    }

    void relabel_endpoint() {
        if (in.endpoints.empty()) return create_endpoint();
        auto& endpoint = in.endpoints[static_cast<std::size_t>(roll(static_cast<int>(in.endpoints.size())))];
        endpoint.labels = random_pod_labels(false);
        endpoint.identity = identity_for(endpoint.labels);
        changes.endpoints.insert(endpoint.id);
    }

    void delete_endpoint() {
        if (in.endpoints.empty()) return;
        const auto at = in.endpoints.begin() + roll(static_cast<int>(in.endpoints.size()));
        changes.endpoints.insert(at->id);
        in.endpoint_ports.erase(at->id);
        in.endpoints.erase(at);
    }

    // Pods of another node declare other named ports (no event: a module
    // learns it from the model).
    void change_remote_ports() {
        std::vector<std::uint32_t> pods;
        for (const auto& identity : in.identities) {
            if (!identity.reserved) pods.push_back(identity.id);
        }
        if (pods.empty()) return;
        const std::uint32_t identity = pick(pods);
        std::vector<membrane::ContainerPort> ports;
        for (const membrane::ContainerPort& port : {membrane::ContainerPort{"http", 8081, 6}, {"http", 80, 6}, {"dns", 5353, 17}}) {
            if (chance(0.4)) ports.push_back(port);
        }
        if (ports.empty()) {
            in.remote_ports.erase(identity);
        } else {
            in.remote_ports[identity] = ports;
        }
    }

    void add_identity() {  // a pod somewhere in the cluster
        const Labels labels = random_pod_labels(true);
        for (const auto& identity : in.identities) {
            if (identity.labels == labels) return;
        }
        const std::uint32_t id = next_identity_++;
        in.identities.push_back({id, labels, false, 0});
        changes.identities.insert(id);
    }

    void remove_identity() {
        std::vector<std::size_t> removable;
        for (std::size_t i = 0; i < in.identities.size(); ++i) {
            if (!in.identities[i].reserved) removable.push_back(i);
        }
        if (removable.empty()) return;
        const auto at = in.identities.begin() + static_cast<std::ptrdiff_t>(pick(removable));
        changes.identities.insert(at->id);
        in.identities.erase(at);
    }

    mp::LabelSelector random_selector(bool namespace_labels_too) {
        mp::LabelSelector selector;
        const int what = roll(10);
        if (what < 2) return selector;  // everything
        if (what < 7) {
            selector.match_labels[pick<std::string>({"app", "k8s:app"})] = pick(kApps);
            if (chance(0.3)) selector.match_labels["tier"] = pick<std::string>({"front", "back"});
        } else if (what < 9) {
            mp::Requirement requirement;
            requirement.key = pick<std::string>({"app", "tier"});
            requirement.op = pick<mp::Requirement::Operator>({mp::Requirement::Operator::in, mp::Requirement::Operator::not_in,
                                                                mp::Requirement::Operator::exists,
                                                                mp::Requirement::Operator::does_not_exist});
            if (requirement.op == mp::Requirement::Operator::in || requirement.op == mp::Requirement::Operator::not_in) {
                requirement.values = {pick(kApps), "front"};
            }
            selector.match_expressions.push_back(requirement);
        } else if (namespace_labels_too) {
            selector.match_labels[std::string(mp::kNamespaceLabelsPrefix) + "team"] = pick<std::string>({"a", "b"});
        }
        return selector;
    }

    mp::Peer random_peer(bool namespaced) {
        mp::Peer peer;
        const int what = roll(10);
        if (what < 6) {
            peer.pods = random_selector(true);
            if (namespaced && chance(0.5)) peer.namespace_name = pick(kNamespaces);
            if (chance(0.3)) {
                mp::LabelSelector ns;
                if (chance(0.5)) ns.match_labels["team"] = pick<std::string>({"a", "b"});
                else ns.match_labels[std::string(mp::kNamespaceNameLabel)] = pick(kNamespaces);
                peer.namespaces = ns;
            }
        } else if (what < 8) {
            peer.kind = mp::Peer::Kind::cidr;
            peer.cidr = pick(kPrefixes);
            if (peer.cidr == "10.0.0.0/8" && chance(0.5)) peer.except = {"10.1.0.0/16"};
            peer.cluster_too = chance(0.5);
        } else {
            peer.kind = mp::Peer::Kind::entity;
            peer.entity = pick<mp::Entity>({mp::Entity::world, mp::Entity::cluster, mp::Entity::host, mp::Entity::remote_node,
                                            mp::Entity::all});
        }
        return peer;
    }

    mp::Rule random_rule(bool namespaced) {
        mp::Rule rule;
        rule.deny = chance(0.2);
        rule.all_peers = chance(0.2);
        if (!rule.all_peers) {
            for (int i = 0, n = 1 + roll(2); i < n; ++i) rule.peers.push_back(random_peer(namespaced));
        }
        if (chance(0.6)) {
            for (int i = 0, n = 1 + roll(2); i < n; ++i) {
                mp::PortRange range;
                range.protocol = pick<mp::Protocol>({mp::Protocol::any, mp::Protocol::tcp, mp::Protocol::tcp, mp::Protocol::udp});
                if (chance(0.35)) {
                    range.name = pick<std::string>({"http", "dns", "metrics"});
                } else {
                    range.port = pick<std::uint16_t>({80, 443, 53, 8080});
                    if (chance(0.2)) range.end_port = static_cast<std::uint16_t>(range.port + 2);
                }
                rule.ports.push_back(range);
            }
        }
        rule.l7 = chance(0.1);
        return rule;
    }

    mp::Policy random_policy(const std::string& kind, const std::string& ns, const std::string& name) {
        mp::Policy pol;
        pol.kind = kind;
        pol.namespace_ = ns;
        pol.name = name;
        pol.subject = random_selector(kind != mp::kNetworkPolicy);
        pol.ingress_enforced = chance(0.5);
        pol.egress_enforced = chance(0.3);
        for (int i = 0, n = roll(3); i < n; ++i) pol.ingress.push_back(random_rule(!ns.empty()));
        for (int i = 0, n = roll(3); i < n; ++i) pol.egress.push_back(random_rule(!ns.empty()));
        return pol;
    }

    // A policy object applied: new or replacing one (one document, now and then two).
    void put_policy() {
        const std::string kind = pick<std::string>({std::string(mp::kNetworkPolicy), std::string(mp::kCiliumNetworkPolicy),
                                                     std::string(mp::kCiliumClusterwideNetworkPolicy)});
        const std::string ns = kind == mp::kCiliumClusterwideNetworkPolicy ? "" : pick(kNamespaces);
        const std::string name = "p" + std::to_string(roll(5));
        auto& documents = objects_[kind + "/" + ns + "/" + name];
        documents.clear();
        for (int i = 0, n = chance(0.15) ? 2 : 1; i < n; ++i) documents.push_back(random_policy(kind, ns, name));
        changes.policies = true;
    }

    // One rule of an applied policy changed (its ports), the rest as it was.
    void tweak_policy() {
        if (objects_.empty()) return put_policy();
        auto it = objects_.begin();
        std::advance(it, roll(static_cast<int>(objects_.size())));
        auto& pol = it->second.front();
        auto& rules = chance(0.5) ? pol.ingress : pol.egress;
        if (rules.empty()) {
            rules.push_back(random_rule(!pol.namespace_.empty()));
        } else {
            rules.front().ports = {{mp::Protocol::tcp, static_cast<std::uint16_t>(1000 + roll(100)), 0, ""}};
        }
        changes.policies = true;
    }

    void delete_policy() {
        if (objects_.empty()) return;
        auto it = objects_.begin();
        std::advance(it, roll(static_cast<int>(objects_.size())));
        objects_.erase(it);
        changes.policies = true;
    }

    void relabel_namespace() {
        const std::string ns = pick(kNamespaces);
        if (chance(0.2)) in.namespaces.erase(ns);
        else in.namespaces[ns] = {{"team", pick<std::string>({"a", "b"})}};
    }

    // The module's order: by object key, each object's documents in order.
    void flatten() {
        in.policies.clear();
        for (const auto& [key, documents] : objects_) in.policies.insert(in.policies.end(), documents.begin(), documents.end());
    }

    std::mt19937 rng_;
    std::uint64_t next_endpoint_ = 1;
    std::uint32_t next_identity_ = 65536 + 256;
    std::map<std::string, std::vector<mp::Policy>> objects_;
};

// ---- The oracle ----

// Many random change sequences; after each step (one to three changes, as a
// burst of events coalesces), the incremental result is compile()'s.
TEST(IncrementalPolicyCompilerTest, EqualsCompileAfterEveryRandomChange) {
    constexpr unsigned kSeeds = 12;
    constexpr int kSteps = 40;
    std::size_t incremental = 0, full = 0, partial = 0, computed = 0, endpoints_seen = 0, rules_seen = 0;
    const auto began = std::chrono::steady_clock::now();
    for (unsigned seed = 1; seed <= kSeeds; ++seed) {
        RandomCluster cluster(seed);
        IncrementalCompiler compiler;
        compiler.update(cluster.in, {.everything = true});
        ASSERT_EQ(first_difference(compiler.compiled(), compile(cluster.in)), "") << "seed " << seed << " start";
        cluster.in.cidr_numbers = compiler.compiled().cidr_numbers;
        for (int step = 1; step <= kSteps; ++step) {
            for (int i = 0, n = 1 + cluster.roll(3); i < n; ++i) cluster.change();
            const Compiled want = compile(cluster.in);
            rules_seen += want.rules.size();
            const Compiled& got = compiler.update(cluster.in, cluster.changes);
            ASSERT_EQ(first_difference(got, want), "")
                << "seed " << seed << " step " << step << " (" << compute_kind_name(compiler.last().kind) << ": "
                << compiler.last().why << ")";
            if (compiler.last().kind == ComputeReport::Kind::incremental) {
                ++incremental;
                computed += compiler.last().endpoints;
                endpoints_seen += cluster.in.endpoints.size();
                partial += compiler.last().endpoints < cluster.in.endpoints.size() ? 1 : 0;
            } else {
                ++full;
            }
            cluster.changes = {};
            cluster.in.cidr_numbers = got.cidr_numbers;
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    std::printf("%zu incremental steps (%zu of them partial; %zu of %zu endpoints computed), %zu full, %zu rules, in %.2f s\n",
                incremental, partial, computed, endpoints_seen, full, rules_seen, seconds);
    // Not a vacuous check: most steps are incremental, and most of those compute fewer endpoints than there are.
    EXPECT_GT(incremental, full * 3);
    EXPECT_GT(partial, incremental / 2);
}

// ---- What one change recomputes ----

membrane::EndpointInfo make_endpoint(std::uint64_t id, const std::string& ns, const std::string& app, std::uint32_t identity) {
    membrane::EndpointInfo e;
    e.id = id;
    e.labels = {{"k8s:app", app}, {std::string(mp::kPodNamespaceLabel), ns}};
    e.identity = identity;
    return e;
}

mp::Policy parse_policy_json(const std::string& json) {
    const auto document = nlohmann::json::parse(json);
    return mp::parse_policy(document.at("kind").get<std::string>(), document).at(0);
}

// In "default": db accepts web; api accepts cache; in "shop": web accepts
// anyone of the cluster on 443 (the `cluster` entity).
class IncrementalPolicyCompilerTargeted : public ::testing::Test {
protected:
    void SetUp() override {
        in.endpoints = {make_endpoint(1, "default", "web", 300), make_endpoint(2, "default", "db", 301),
                        make_endpoint(3, "default", "db", 301), make_endpoint(4, "default", "api", 302),
                        make_endpoint(5, "shop", "web", 303), make_endpoint(6, "default", "cache", 304)};
        for (const auto& endpoint : in.endpoints) {
            bool known = false;
            for (const auto& identity : in.identities) known = known || identity.id == endpoint.identity;
            if (!known) in.identities.push_back({endpoint.identity, endpoint.labels, false, 1});
        }
        in.policies = {parse_policy_json(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
            "metadata":{"name":"db","namespace":"default"},
            "spec":{"endpointSelector":{"matchLabels":{"app":"db"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"web"}}]}]}})"),
                       parse_policy_json(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
            "metadata":{"name":"api","namespace":"default"},
            "spec":{"endpointSelector":{"matchLabels":{"app":"api"}},"ingress":[{"fromEndpoints":[{"matchLabels":{"app":"cache"}}]}]}})"),
                       parse_policy_json(R"({"apiVersion":"cilium.io/v2","kind":"CiliumNetworkPolicy",
            "metadata":{"name":"web","namespace":"shop"},
            "spec":{"endpointSelector":{"matchLabels":{"app":"web"}},
                    "ingress":[{"fromEntities":["cluster"],"toPorts":[{"ports":[{"port":"443","protocol":"TCP"}]}]}]}})")};
        compiler.update(in, {.everything = true});
        in.cidr_numbers = compiler.compiled().cidr_numbers;
    }

    // Updates and checks the result against compile(); returns the endpoints computed.
    std::size_t update(const Changes& changes) {
        const Compiled& got = compiler.update(in, changes);
        EXPECT_EQ(first_difference(got, compile(in)), "");
        EXPECT_EQ(compiler.last().kind, ComputeReport::Kind::incremental) << compiler.last().why;
        return compiler.last().endpoints;
    }

    Inputs in;
    IncrementalCompiler compiler;
};

TEST_F(IncrementalPolicyCompilerTargeted, ANewIdentityRecomputesOnlyTheEndpointsWhosePeersItMayBe) {
    // A web pod of "default" on another node: db's peer (2 and 3), and the cluster (5).
    in.identities.push_back({400, {{"k8s:app", "web"}, {std::string(mp::kPodNamespaceLabel), "default"}}, false, 0});
    EXPECT_EQ(update({.identities = {400}}), 3u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{2, POLICY_INGRESS, 400, 0, 0}), 1u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{5, POLICY_INGRESS, 400, 6, 443}), 1u);
    // A cache pod in "shop": no namespaced policy of "default" takes it; only the cluster entity (5).
    in.identities.push_back({401, {{"k8s:app", "cache"}, {std::string(mp::kPodNamespaceLabel), "shop"}}, false, 0});
    EXPECT_EQ(update({.identities = {401}}), 1u);
    // Gone again: the same endpoints, and their rules for it with it.
    in.identities.pop_back();
    in.identities.pop_back();
    EXPECT_EQ(update({.identities = {400, 401}}), 3u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{2, POLICY_INGRESS, 400, 0, 0}), 0u);
}

TEST_F(IncrementalPolicyCompilerTargeted, ANewEndpointOrRelabelledOneRecomputesItselfOnly) {
    in.endpoints.push_back(make_endpoint(7, "default", "db", 301));
    EXPECT_EQ(update({.endpoints = {7}}), 1u);
    EXPECT_TRUE(compiler.compiled().endpoints.contains(7));
    in.endpoints[0].labels["k8s:app"] = "api";  // web (1) becomes api: its identity is another, an existing one
    in.endpoints[0].identity = 302;
    EXPECT_EQ(update({.endpoints = {1}}), 1u);
    EXPECT_TRUE(compiler.compiled().endpoints.contains(1));
}

// The model can be ahead of its queued events (or an event may never come):
// what changed is found in the inputs, the events only add to it.
TEST_F(IncrementalPolicyCompilerTargeted, ChangesWithoutTheirEventsAreFoundInTheInputs) {
    in.identities.push_back({400, {{"k8s:app", "web"}, {std::string(mp::kPodNamespaceLabel), "default"}}, false, 0});
    EXPECT_EQ(update({}), 3u);  // as with its event: 2, 3 and 5
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{2, POLICY_INGRESS, 400, 0, 0}), 1u);
    in.endpoints.push_back(make_endpoint(7, "default", "db", 301));
    in.endpoints[0].labels["k8s:app"] = "api";
    in.endpoints[0].identity = 302;
    EXPECT_EQ(update({}), 2u);
    EXPECT_TRUE(compiler.compiled().endpoints.contains(7));
    in.policies[0].subject.match_labels = {{"app", "cache"}};
    EXPECT_GE(update({}), 1u);
}

TEST_F(IncrementalPolicyCompilerTargeted, APolicyChangeRecomputesWhatItsOldAndNewVersionsSelect) {
    in.policies[0].subject.match_labels = {{"app", "cache"}};  // db (2, 3) -> cache (6)
    EXPECT_EQ(update({.policies = true}), 3u);
    in.policies[1].ingress[0].ports = {{mp::Protocol::tcp, 8080, 0, ""}};  // api (4): its rule ids stay
    EXPECT_EQ(update({.policies = true}), 1u);
    // Deleting the first policy moves every later policy's rule ids: their endpoints too.
    in.policies.erase(in.policies.begin());
    EXPECT_EQ(update({.policies = true}), 3u);  // 6 (old version), 4 and 5 (ids moved)
}

TEST_F(IncrementalPolicyCompilerTargeted, ANamespaceLabelChangeRecomputesEverything) {
    in.namespaces["default"] = {{"team", "a"}};
    compiler.update(in, {});  // no event needed: update() compares the namespaces itself
    EXPECT_EQ(first_difference(compiler.compiled(), compile(in)), "");
    EXPECT_EQ(compiler.last().kind, ComputeReport::Kind::full);
    EXPECT_EQ(compiler.last().endpoints, in.endpoints.size());
}

// An egress named port means the destination pods' own port, on this node or
// another: a pod arriving with that port changes its clients' rules too.
TEST(IncrementalPolicyCompilerNamedPorts, APodsNamedPortReachesTheEgressRulesNamingIt) {
    Inputs in;
    in.endpoints = {make_endpoint(1, "default", "client", 300), make_endpoint(2, "default", "other", 302)};
    in.identities = {{300, in.endpoints[0].labels, false, 1},
                     {301, make_endpoint(0, "default", "web", 0).labels, false, 0},
                     {302, in.endpoints[1].labels, false, 1}};
    in.policies = {parse_policy_json(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"to-web","namespace":"default"},
        "spec":{"podSelector":{"matchLabels":{"app":"client"}},"policyTypes":["Egress"],
                "egress":[{"to":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"port":"http"}]}]}})")};
    IncrementalCompiler compiler;
    compiler.update(in, {.everything = true});
    in.cidr_numbers = compiler.compiled().cidr_numbers;
    // A web pod starts here, its "http" being 8080: itself, and the client (1), not the other pod (2).
    in.endpoints.push_back(make_endpoint(3, "default", "web", 301));
    in.endpoint_ports[3] = {{"http", 8080, 6}};
    compiler.update(in, {.endpoints = {3}});
    EXPECT_EQ(first_difference(compiler.compiled(), compile(in)), "");
    EXPECT_EQ(compiler.last().kind, ComputeReport::Kind::incremental);
    EXPECT_EQ(compiler.last().endpoints, 2u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{1, POLICY_EGRESS, 301, 6, 8080}), 1u);

    // A web pod on another node calls 8081 "http": the client only, with no event.
    in.remote_ports[301] = {{"http", 8081, 6}};
    compiler.update(in, {});
    EXPECT_EQ(first_difference(compiler.compiled(), compile(in)), "");
    EXPECT_EQ(compiler.last().kind, ComputeReport::Kind::incremental);
    EXPECT_EQ(compiler.last().endpoints, 1u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{1, POLICY_EGRESS, 301, 6, 8081}), 1u);
    in.remote_ports.clear();  // gone again
    compiler.update(in, {});
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{1, POLICY_EGRESS, 301, 6, 8081}), 0u);
    EXPECT_EQ(compiler.compiled().rules.count(RuleKey{1, POLICY_EGRESS, 301, 6, 8080}), 1u);
}

}  // namespace
}  // namespace policy_l3l4::incremental_test
