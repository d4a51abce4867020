// How long compile() takes for P policies over E local endpoints and the
// cluster's identities (one per endpoint label set), the module's whole
// recomputation short of the map writes: printed as a median over runs,
// beside the same inputs with one policy (the baseline), and the ratio.
// Then, at P x E, what the module does after one change instead
// (IncrementalCompiler::update: only the endpoints the change affects),
// beside compile() of the same changed inputs, and the ratio; each
// incremental result is checked equal to compile()'s.
//   policy-l3l4-compile-bench [POLICIES [ENDPOINTS [RUNS]]]   (default 1000 500 5)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "incremental_compiler.hpp"
#include "policy_compiler.hpp"

namespace {

namespace policy = membrane::policy;
using policy_l3l4::Inputs;

// Endpoints in 10 namespaces, 50 apps each: app-<n> in ns-<n % 10>.
Inputs make_inputs(int policies, int endpoints) {
    Inputs in;
    for (int e = 0; e < endpoints; ++e) {
        const std::string ns = "ns-" + std::to_string(e % 10);
        membrane::Labels labels{{"k8s:app", "app-" + std::to_string(e % 50)}, {"k8s:io.kubernetes.pod.namespace", ns}};
        membrane::EndpointInfo endpoint;
        endpoint.id = static_cast<std::uint64_t>(e + 1);
        endpoint.labels = labels;
        endpoint.identity = 65536 + 256 + static_cast<std::uint32_t>(e % 500);
        in.endpoints.push_back(endpoint);
        if (e < 500) in.identities.push_back({endpoint.identity, labels, false, 1});
    }
    // Each policy: app-<p % 50> in ns-<p % 10> accepts app-<(p+1) % 50> on one TCP port.
    for (int p = 0; p < policies; ++p) {
        policy::Policy pol;
        pol.kind = "CiliumNetworkPolicy";
        pol.namespace_ = "ns-" + std::to_string(p % 10);
        pol.name = "p-" + std::to_string(p);
        pol.subject.match_labels = {{"app", "app-" + std::to_string(p % 50)}};
        pol.ingress_enforced = true;
        policy::Rule rule;
        rule.peers = {policy::Peer{.pods = {{{"app", "app-" + std::to_string((p + 1) % 50)}}, {}}}};
        rule.ports = {{policy::Protocol::tcp, static_cast<std::uint16_t>(1000 + p % 5000), 0, ""}};
        pol.ingress = {rule};
        in.policies.push_back(pol);
    }
    return in;
}

struct Result {
    double median_ms;
    std::size_t rules;
};

Result measure(const Inputs& in, int runs) {
    std::vector<double> times;
    std::size_t rules = 0;
    for (int r = 0; r < runs; ++r) {
        const auto began = std::chrono::steady_clock::now();
        const auto compiled = policy_l3l4::compile(in);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count());
        rules = compiled.rules.size();
    }
    std::sort(times.begin(), times.end());
    return {times[times.size() / 2], rules};
}

double median(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

double since(std::chrono::steady_clock::time_point began) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
}

struct Change {
    std::string what;
    Inputs inputs;  // after the change
    policy_l3l4::Changes changes;
};

std::vector<Change> one_changes(const Inputs& base) {
    std::vector<Change> out;
    {  // a pod of app-7 in ns-7 on another node: the peer of the 20 policies of app-6 (ns-6)
        Change c{"one new identity", base, {}};
        const std::uint32_t id = 65536 + 256 + 1000;
        c.inputs.identities.push_back({id, {{"k8s:app", "app-7"}, {"k8s:io.kubernetes.pod.namespace", "ns-7"}}, false, 0});
        c.changes.identities = {id};
        out.push_back(std::move(c));
    }
    {  // one more pod of app-3 in ns-3, with that label set's identity
        Change c{"one new endpoint", base, {}};
        membrane::EndpointInfo endpoint = base.endpoints.at(3);
        endpoint.id = 100000;
        c.inputs.endpoints.push_back(endpoint);
        c.changes.endpoints = {endpoint.id};
        out.push_back(std::move(c));
    }
    {  // endpoint 1 (app-0, ns-0) relabelled app-10 (still ns-0), endpoint 11's identity
        Change c{"one endpoint's labels changed", base, {}};
        c.inputs.endpoints.at(0).labels["k8s:app"] = "app-10";
        c.inputs.endpoints.at(0).identity = base.endpoints.at(10).identity;
        c.changes.endpoints = {c.inputs.endpoints.at(0).id};
        out.push_back(std::move(c));
    }
    {  // the middle policy's port changed (its rule ids stay)
        Change c{"one policy changed", base, {}};
        auto& pol = c.inputs.policies.at(c.inputs.policies.size() / 2);
        pol.ingress.at(0).ports.at(0).port = 7777;
        c.changes.policies = true;
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const int policies = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int endpoints = argc > 2 ? std::atoi(argv[2]) : 500;
    const int runs = argc > 3 ? std::atoi(argv[3]) : 5;
    if (policies < 1 || endpoints < 1 || runs < 1) {
        std::fprintf(stderr, "usage: %s [POLICIES>=1 [ENDPOINTS>=1 [RUNS>=1]]]\n", argv[0]);
        return 2;
    }
    const Result one = measure(make_inputs(1, endpoints), runs);
    const Result many = measure(make_inputs(policies, endpoints), runs);
    std::printf("%-34s %12s %14s\n", "policy-l3l4 compile()", "median ms", "datapath rules");
    std::printf("%-34s %12.2f %14zu\n", ("1 policy x " + std::to_string(endpoints) + " endpoints").c_str(), one.median_ms,
                one.rules);
    std::printf("%-34s %12.2f %14zu\n",
                (std::to_string(policies) + " policies x " + std::to_string(endpoints) + " endpoints").c_str(),
                many.median_ms, many.rules);
    std::printf("ratio: %.1fx the time for %dx the policies\n", many.median_ms / std::max(one.median_ms, 1e-6), policies);

    // After one change: compile() of everything (what the module did) vs the incremental update.
    const Inputs base = make_inputs(policies, endpoints);
    policy_l3l4::IncrementalCompiler warm;
    warm.update(base, {.everything = true});
    const std::string title = "one change, " + std::to_string(policies) + " x " + std::to_string(endpoints);
    std::printf("\n%-34s %12s %12s %10s %8s %s\n", title.c_str(), "full ms", "incr. ms", "endpoints", "ratio",
                "same as compile()");
    int failures = 0;
    for (auto& change : one_changes(base)) {
        change.inputs.cidr_numbers = warm.compiled().cidr_numbers;
        std::vector<double> full_times, incremental_times;
        policy_l3l4::Compiled reference;
        std::size_t computed = 0;
        bool same = true;
        for (int r = 0; r < runs; ++r) {
            auto began = std::chrono::steady_clock::now();
            reference = policy_l3l4::compile(change.inputs);
            full_times.push_back(since(began));
            policy_l3l4::IncrementalCompiler compiler = warm;  // the state before the change (copied untimed)
            Inputs inputs = change.inputs;
            began = std::chrono::steady_clock::now();
            const auto& got = compiler.update(std::move(inputs), change.changes);
            incremental_times.push_back(since(began));
            computed = compiler.last().endpoints;
            same = same && compiler.last().kind == policy_l3l4::ComputeReport::Kind::incremental && got == reference;
        }
        const double full_ms = median(full_times), incremental_ms = median(incremental_times);
        std::printf("%-34s %12.2f %12.3f %10zu %7.0fx %s\n", change.what.c_str(), full_ms, incremental_ms, computed,
                    full_ms / std::max(incremental_ms, 1e-6), same ? "yes" : "NO");
        failures += same ? 0 : 1;
    }
    return failures == 0 ? 0 : 1;
}
