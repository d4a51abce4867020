// How long compile() takes for P policies over E local endpoints and the
// cluster's identities (one per endpoint label set), the module's whole
// recomputation short of the map writes: printed as a median over runs,
// beside the same inputs with one policy (the baseline), and the ratio.
//   policy-l3l4-compile-bench [POLICIES [ENDPOINTS [RUNS]]]   (default 1000 500 5)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

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
    return 0;
}
