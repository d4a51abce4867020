// The built membranectl against the service (fake control) on a private bus:
// what people read, what scripts parse, and how failures look.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "private_dbus_daemon.hpp"
#include "run_process.hpp"
#include "service_harness.hpp"

#ifndef MEMBRANECTL_PATH
#error "dbus/CMakeLists.txt defines MEMBRANECTL_PATH: every build of the unit tests builds membranectl"
#endif

namespace membrane::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class MembranectlTest : public ServiceTest {
protected:

    // membranectl with the bus from the environment, as a script would set it.
    static ProcessResult ctl(std::vector<std::string> args) {
        args.insert(args.begin(), MEMBRANECTL_PATH);
        return run_process(args, {{"MEMBRANE_DBUS_ADDRESS", address()}});
    }

    void SetUp() override {
        service_.run_on_loop([this] {
            service_.service().set_module_methods(
                "lb-maglev", {{"Backends", [](const std::string& request) {
                                   auto req = nlohmann::json::parse(request);
                                   return nlohmann::json{{"service", req.value("service", "")}, {"backends", 3}}.dump();
                               }},
                              {"Broken", [](const std::string&) -> std::string {
                                   throw std::runtime_error("no such service");
                               }}});
        });
    }

};

TEST_F(MembranectlTest, StatusAsJsonParses) {
    const auto result = ctl({"-o", "json", "status"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto status = nlohmann::json::parse(result.out);
    EXPECT_EQ(status["node"], "node-a");
    EXPECT_EQ(status["state"], "running");
    EXPECT_EQ(status["uptime_seconds"], 42);
    EXPECT_EQ(status["devices"], nlohmann::json({"eth0", "vxlan0"}));
    EXPECT_EQ(status["modules_failed"], 1);
}

TEST_F(MembranectlTest, StatusAsTableIsAligned) {
    const auto result = ctl({"status"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    // Values start two columns after the longest label ("Manifests:").
    EXPECT_THAT(result.out, HasSubstr("Node:       node-a\n"));
    EXPECT_THAT(result.out, HasSubstr("Uptime:     42s\n"));
    EXPECT_THAT(result.out, HasSubstr("Devices:    eth0,vxlan0\n"));
    EXPECT_THAT(result.out, HasSubstr("Modules:    1 running, 1 failed\n"));
    EXPECT_THAT(result.out, HasSubstr("KV store:   off (state on this node only)\n"));
    EXPECT_THAT(result.out, HasSubstr("Manifests:  off\n"));
}

TEST_F(MembranectlTest, StatusShowsTheManifestsFolderAndEachProblemOnItsLine) {
    service_.run_on_loop([this] { service_.control().with_manifests = true; });
    const auto result = ctl({"status"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out, HasSubstr("Manifests:  /etc/membrane/manifests: 2 files applied, 2 not\n"
                                      "            /etc/membrane/manifests/bank.yaml: not applied yet, tried again in a moment\n"
                                      "            /etc/membrane/manifests/shop.yaml: document 2 (line 13): kind: missing\n"));
    const auto json = nlohmann::json::parse(ctl({"-o", "json", "status"}).out);
    EXPECT_EQ(json["manifests_problems"].size(), 2u);
    EXPECT_EQ(json["manifests_files"], 2);
}

TEST_F(MembranectlTest, KvstoreStatusWithoutAStoreSaysOff) {
    const auto table = ctl({"kvstore", "status"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out, "off: no [kvstore] in membrane.toml, so this node keeps its state to itself\n");
    const auto json = ctl({"-o", "json", "kvstore", "status"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out), nlohmann::json::parse(R"({"state":"off"})"));
}

TEST_F(MembranectlTest, KvstoreStatusShowsConnectionRevisionLagLeaseAndWatches) {
    service_.run_on_loop([this] { service_.control().with_kvstore = true; });
    const auto table = ctl({"kvstore", "status"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out,
              "Cluster:     lab (id 3)\n"
              "Store:       connected to https://192.168.50.254:2379 since 2026-12-02 21:03:04 UTC (2 connections)\n"
              "Revision:    153 (the newest seen)\n"
              "Lag:         1.2 s since the store last answered\n"
              "Lease:       6a6ca2388e9e0e12 (TTL 30 s)\n"
              "Watches:     membrane/v1/lab/endpoints/ at revision 150\n"
              "             membrane/v1/lab/nodes/ listing\n"
              "Last error:  https://192.168.50.254:2379: connection refused\n");

    const auto json = ctl({"-o", "json", "kvstore", "status"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out), nlohmann::json::parse(R"({
        "state": "connected", "cluster": "lab", "cluster_id": 3, "endpoint": "https://192.168.50.254:2379",
        "since": 1796245384, "connects": 2, "revision": 153, "lag_ms": 1234, "lease": "6a6ca2388e9e0e12",
        "lease_ttl": 30, "watches": {"membrane/v1/lab/endpoints/": 150, "membrane/v1/lab/nodes/": 0},
        "error": "https://192.168.50.254:2379: connection refused"})"));
}

TEST_F(MembranectlTest, ApplyReadsTheFileAndSaysWhatItDidToEachObject) {
    const std::string file = ::testing::TempDir() + "/membranectl-apply.yaml";
    std::ofstream(file) << "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
    const auto table = ctl({"apply", "-f", file});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out, "namespace/shop created\nnamespace/bank unchanged\n");
    const auto json = ctl({"apply", "-f", file, "-o", "json"});  // -o after the command too
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out)[0],
              nlohmann::json::parse(R"({"kind":"Namespace","namespace":"","name":"shop","action":"created"})"));
    EXPECT_EQ(service_.control().calls().back().what, "apply " + file) << "the file is named in the agent's messages";
}

TEST_F(MembranectlTest, ApplyRefusalsSayWhyAndExitOne) {
    const std::string file = ::testing::TempDir() + "/membranectl-bad.yaml";
    std::ofstream(file) << "bad\n";
    const auto bad = ctl({"apply", "-f", file});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err, "membranectl: apply: org.membrane.Error.InvalidArgument: " + file +
                           ": document 2 (line 7): metadata.name: \"Bad\" must be a DNS label\n");
    std::ofstream(file) << "away\n";
    const auto away = ctl({"apply", "-f", file});
    EXPECT_EQ(away.exit_code, 1);
    EXPECT_THAT(away.err, HasSubstr("org.membrane.Error.Unavailable: the kvstore did not take it"));
    const auto missing = ctl({"apply", "-f", ::testing::TempDir() + "/no-such-file.yaml"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_THAT(missing.err, HasSubstr("apply: cannot read"));
    EXPECT_EQ(ctl({"apply"}).exit_code, 2) << "-f is required";
    const auto folder = ctl({"apply", "-f", ::testing::TempDir()});
    EXPECT_EQ(folder.exit_code, 1);
    EXPECT_THAT(folder.err, HasSubstr("is a folder; give a file"));
    std::ofstream(file) << "name: caf\xe9\n";  // Latin-1, not UTF-8
    const auto latin1 = ctl({"apply", "-f", file});
    EXPECT_EQ(latin1.exit_code, 1);
    // nlohmann names the first byte that cannot continue the sequence 0xE9 starts.
    EXPECT_EQ(latin1.err, "membranectl: apply: " + file + " is not UTF-8 text (invalid UTF-8 byte at index 10: 0x0A)\n");
}

TEST_F(MembranectlTest, GetListsObjectsAndDeleteRemovesOne) {
    const auto table = ctl({"get", "ns"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out,
              "KIND       NAME  LABELS\n"
              "Namespace  bank  -\n"
              "Namespace  shop  team=a\n");
    const auto json = ctl({"-o", "json", "get", "ns", "shop"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out).size(), 2u);
    EXPECT_EQ(service_.control().calls().back().what, "list ns /shop");

    const auto deleted = ctl({"delete", "ns", "shop"});
    ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
    EXPECT_EQ(deleted.out, "ns/shop deleted\n");
    const auto missing = ctl({"delete", "ns", "missing"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "membranectl: delete: org.membrane.Error.NotFound: Namespace missing does not exist\n");
    EXPECT_EQ(ctl({"delete", "ns"}).exit_code, 2) << "NAME is required";
}

TEST_F(MembranectlTest, ModuleListAsJsonAndTable) {
    const auto json = ctl({"--output", "json", "module", "list"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto modules = nlohmann::json::parse(json.out);
    ASSERT_EQ(modules.size(), 2u);
    EXPECT_EQ(modules[0]["name"], "policy");
    EXPECT_EQ(modules[0]["generation"], 3);
    EXPECT_EQ(modules[0]["stages"], nlohmann::json({2, 4}));
    EXPECT_EQ(modules[1]["message"], "start threw: boom");

    const auto table = ctl({"module", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_THAT(table.out, StartsWith("NAME       STATE    GEN  SDK  STAGES  PATH"));
    EXPECT_THAT(table.out, HasSubstr("\nlb-maglev  failed   1    1.0  -       /usr/lib/membrane/modules/lb-maglev.so  "
                                     "start threw: boom\n"));
}

TEST_F(MembranectlTest, LifecycleCommandsReachTheAgent) {
    EXPECT_EQ(ctl({"module", "load", "conntrack"}).out, "module conntrack: loaded\n");
    EXPECT_EQ(ctl({"module", "reload", "conntrack"}).exit_code, 0);
    const auto unload = ctl({"-o", "json", "module", "unload", "conntrack"});
    EXPECT_EQ(nlohmann::json::parse(unload.out)["action"], "unload");
    const auto calls = service_.control().calls();
    ASSERT_EQ(calls.size(), 3u);
    EXPECT_EQ(calls[0].what, "load conntrack");
    EXPECT_EQ(calls[1].what, "reload conntrack");
    EXPECT_EQ(calls[2].what, "unload conntrack");
}

TEST_F(MembranectlTest, UnloadOfAFailClosedStagesHolderSaysWhyAndNeedsForce) {
    const auto refused = ctl({"module", "unload", "policy"});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_THAT(refused.err, HasSubstr("org.membrane.Error.NeedsForce"));
    EXPECT_THAT(refused.err, HasSubstr("stage 2 (egress-policy) is fail-closed: packets through it will be dropped "
                                       "until a module fills it"));
    const auto forced = ctl({"module", "unload", "--force", "policy"});
    EXPECT_EQ(forced.exit_code, 0) << forced.err;
    EXPECT_EQ(forced.out, "module policy: unloaded\n");
    const auto calls = service_.control().calls();
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].what, "unload policy");
    EXPECT_EQ(calls[1].what, "unload policy --force");
}

TEST_F(MembranectlTest, AgentErrorsAreOneLineAndExitOne) {
    const auto result = ctl({"module", "load", "missing"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(result.err,
              "membranectl: load module missing: org.membrane.Error.NotFound: "
              "no module file missing.so in /usr/lib/membrane/modules\n");
}

TEST_F(MembranectlTest, ModuleCallPrintsTheReply) {
    const auto result = ctl({"-o", "json", "module", "call", "lb-maglev", "Backends", R"({"service":"web"})"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto reply = nlohmann::json::parse(result.out);
    EXPECT_EQ(reply["service"], "web");
    EXPECT_EQ(reply["backends"], 3);

    const auto broken = ctl({"module", "call", "lb-maglev", "Broken"});
    EXPECT_EQ(broken.exit_code, 1);
    EXPECT_EQ(broken.err, "membranectl: call lb-maglev Broken: org.membrane.Error.ModuleMethod: no such service\n");
}

TEST_F(MembranectlTest, UsageErrorsExitTwo) {
    EXPECT_EQ(ctl({}).exit_code, 2);
    EXPECT_EQ(ctl({"module"}).exit_code, 2);
    EXPECT_EQ(ctl({"module", "load"}).exit_code, 2);
    EXPECT_EQ(ctl({"-o", "yaml", "status"}).exit_code, 2);
    const auto bad_json = ctl({"module", "call", "lb-maglev", "Backends", "{not json"});
    EXPECT_EQ(bad_json.exit_code, 2);
    EXPECT_THAT(bad_json.err, HasSubstr("not valid JSON"));
    EXPECT_EQ(ctl({"--help"}).exit_code, 0);
    EXPECT_EQ(ctl({"module", "call", "--help"}).exit_code, 0);
}

// Every row's cells start where the header's columns start (the header
// names are single words here but "POD CIDR", which is given in `headers`).
void expect_aligned(const std::string& table, const std::vector<std::string>& headers) {
    std::vector<std::string> lines;
    std::istringstream in(table);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    ASSERT_GE(lines.size(), 2u) << table;
    std::vector<std::size_t> starts;
    for (const auto& header : headers) {
        const auto at = lines[0].find(header);
        ASSERT_NE(at, std::string::npos) << header << " not in " << lines[0];
        starts.push_back(at);
    }
    for (std::size_t row = 1; row < lines.size(); ++row) {
        for (std::size_t column = 1; column < starts.size(); ++column) {
            const auto at = starts[column];
            ASSERT_GT(lines[row].size(), at) << lines[row];
            EXPECT_EQ(lines[row][at - 1], ' ') << "row " << row << " column " << headers[column] << ": " << lines[row];
            EXPECT_NE(lines[row][at], ' ') << "row " << row << " column " << headers[column] << ": " << lines[row];
        }
    }
}

TEST_F(MembranectlTest, EndpointListAsJsonParses) {
    const auto result = ctl({"-o", "json", "endpoint", "list"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto endpoints = nlohmann::json::parse(result.out);
    ASSERT_EQ(endpoints.size(), 2u);
    const auto& web = endpoints[0];
    EXPECT_EQ(web["id"], 1);
    EXPECT_EQ(web["container_id"], "4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a");
    EXPECT_EQ(web["ifname"], "eth0");
    EXPECT_EQ(web["netns"], "/var/run/netns/cni-1");
    EXPECT_EQ(web["host_ifname"], "mbr1a2b3c4d5e6");
    EXPECT_EQ(web["host_ifindex"], 11);
    EXPECT_EQ(web["address"], "10.10.1.2");
    EXPECT_EQ(web["mac"], "0a:58:0a:0a:01:02");
    EXPECT_EQ(web["labels"], nlohmann::json({{"app", "web"}, {"k8s:namespace", "default"}}));
    EXPECT_EQ(web["identity"], 4096);
    EXPECT_EQ(web["state"], "ready");
    EXPECT_EQ(web.size(), 11u);
    // No labels is an empty object, not null.
    EXPECT_EQ(endpoints[1]["labels"], nlohmann::json::object());
}

TEST_F(MembranectlTest, EndpointListAsTableIsAligned) {
    const auto result = ctl({"endpoint", "list"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out, StartsWith("ID  CONTAINER     IFNAME  ADDRESS    IDENTITY  LABELS"));
    // The container id is cut to 12 characters; no labels shows as "-".
    EXPECT_THAT(result.out, HasSubstr("\n1   4f1c2a9b7d3e  eth0    10.10.1.2  4096      app=web,k8s:namespace=default  ready\n"));
    EXPECT_THAT(result.out, HasSubstr("\n2   c0ffee001122  net1    10.10.1.3  4097      -"));
    expect_aligned(result.out, {"ID", "CONTAINER", "IFNAME", "ADDRESS", "IDENTITY", "LABELS", "STATE"});
}

TEST_F(MembranectlTest, EndpointGetShowsEveryField) {
    const auto table = ctl({"endpoint", "get", "1"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_THAT(table.out, StartsWith("ID:              1\n"));
    EXPECT_THAT(table.out,
                HasSubstr("Container:       4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a\n"));
    EXPECT_THAT(table.out, HasSubstr("Host interface:  mbr1a2b3c4d5e6 (ifindex 11)\n"));
    EXPECT_THAT(table.out, HasSubstr("Labels:          app=web,k8s:namespace=default\n"));
    EXPECT_THAT(table.out, HasSubstr("State:           ready\n"));

    const auto json = ctl({"-o", "json", "endpoint", "get", "2"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out)["ifname"], "net1");
}

TEST_F(MembranectlTest, EndpointFindByContainerAndInterface) {
    const auto result = ctl({"-o", "json", "endpoint", "find",
                             "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc", "net1"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(nlohmann::json::parse(result.out)["id"], 2);

    const auto missing = ctl({"endpoint", "find", "nope", "eth0"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err,
              "membranectl: endpoint find nope eth0: org.membrane.Error.NotFound: "
              "no endpoint for container nope interface eth0\n");
}

TEST_F(MembranectlTest, EndpointErrorsAreOneLineAndExitOne) {
    const auto result = ctl({"endpoint", "get", "99"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.out, "");
    EXPECT_EQ(result.err, "membranectl: endpoint get 99: org.membrane.Error.NotFound: no endpoint 99\n");
}

TEST_F(MembranectlTest, EndpointLabelsReplacesThem) {
    const auto result = ctl({"-o", "json", "endpoint", "labels", "1", "app=api", "tier="});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto endpoint = nlohmann::json::parse(result.out);
    EXPECT_EQ(endpoint["labels"], nlohmann::json({{"app", "api"}, {"tier", ""}}));
    EXPECT_EQ(endpoint["identity"], 5000);

    const auto table = ctl({"endpoint", "labels", "1", "app=db"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_THAT(table.out, HasSubstr("Labels:          app=db\n"));

    const auto cleared = ctl({"-o", "json", "endpoint", "labels", "1", "--clear"});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
    EXPECT_EQ(nlohmann::json::parse(cleared.out)["labels"], nlohmann::json::object());

    std::vector<std::string> whats;
    for (const auto& call : service_.endpoints().calls()) whats.push_back(call.what);
    EXPECT_EQ(whats, (std::vector<std::string>{"prepare 2 labels", "labels 1", "prepare 1 labels", "labels 1",
                                                "prepare 0 labels", "labels 1"}));
}

TEST_F(MembranectlTest, EndpointUsageErrorsExitTwoAndNeverCallTheAgent) {
    EXPECT_EQ(ctl({"endpoint"}).exit_code, 2);
    EXPECT_EQ(ctl({"endpoint", "get"}).exit_code, 2);
    EXPECT_EQ(ctl({"endpoint", "get", "seven"}).exit_code, 2);
    EXPECT_EQ(ctl({"endpoint", "find", "c1"}).exit_code, 2);
    const auto none = ctl({"endpoint", "labels", "1"});
    EXPECT_EQ(none.exit_code, 2);
    EXPECT_THAT(none.err, HasSubstr("--clear"));
    const auto malformed = ctl({"endpoint", "labels", "1", "app"});
    EXPECT_EQ(malformed.exit_code, 2);
    EXPECT_EQ(malformed.err, "membranectl: endpoint labels: 'app' is not KEY=VALUE\n");
    EXPECT_EQ(ctl({"endpoint", "labels", "1", "=web"}).exit_code, 2);
    const auto twice = ctl({"endpoint", "labels", "1", "app=a", "app=b"});
    EXPECT_EQ(twice.exit_code, 2);
    EXPECT_THAT(twice.err, HasSubstr("'app' is given twice"));
    EXPECT_EQ(ctl({"endpoint", "labels", "1", "app=a", "--clear"}).exit_code, 2);
    EXPECT_TRUE(service_.endpoints().calls().empty());

    const auto help = ctl({"endpoint", "labels", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_THAT(help.out, HasSubstr("KEY=VALUE"));
    EXPECT_EQ(ctl({"endpoint", "--help"}).exit_code, 0);
}

TEST_F(MembranectlTest, IdentityListAsJsonAndTable) {
    const auto json = ctl({"-o", "json", "identity", "list"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto identities = nlohmann::json::parse(json.out);
    ASSERT_EQ(identities.size(), 3u);
    EXPECT_EQ(identities[0], nlohmann::json({{"id", 1}, {"labels", {{"reserved:host", ""}}}, {"reserved", true},
                                             {"endpoints", 0}}));
    EXPECT_EQ(identities[2]["labels"]["app"], "web");

    const auto table = ctl({"identity", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out,
              "ID    RESERVED  ENDPOINTS  LABELS\n"
              "1     yes       0          reserved:host\n"
              "2     yes       0          reserved:world\n"
              "4096  no        1          app=web,k8s:namespace=default\n");
}

TEST_F(MembranectlTest, NodeListAsJsonAndTable) {
    const auto json = ctl({"-o", "json", "node", "list"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out),
              nlohmann::json::parse(R"([{"name":"node-a","ip":"192.168.50.2","pod_cidr":"10.10.1.0/24","local":true},
                                        {"name":"node-b","ip":"192.168.50.3","pod_cidr":"10.10.2.0/24","local":false}])"));

    const auto table = ctl({"node", "list"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out,
              "NAME    IP            POD CIDR      LOCAL\n"
              "node-a  192.168.50.2  10.10.1.0/24  yes\n"
              "node-b  192.168.50.3  10.10.2.0/24  no\n");
    expect_aligned(table.out, {"NAME", "IP", "POD CIDR", "LOCAL"});
}

TEST_F(MembranectlTest, StatsAsJsonAndTable) {
    const auto json = ctl({"-o", "json", "stats"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    // An object name -> packets, in the agent's (reason) order.
    EXPECT_EQ(json.out, R"({"entry_from_netdev":7,"pipeline_done":0,"drop_invalid":2,"reason_15":1})"
                        "\n");
    const auto table = ctl({"stats"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_THAT(table.out, StartsWith("REASON"));
    EXPECT_THAT(table.out, HasSubstr("drop_invalid       2"));
}

// policy-l3l4's Status reply (modules/policy-l3l4, status_json) on a node
// with three endpoints: one policy name in two namespaces and two kinds, an
// L7 rule of a cluster-wide policy that selects no endpoint here.
const char* const kPolicyStatus = R"({
  "enforcement": "default", "policies": 4, "datapath_rules": 4, "last_compute_ms": 0.1,
  "endpoints": [
    {"id": 1, "ipv4": "10.93.2.2", "identity": 65793, "ingress_enforced": true, "egress_enforced": false,
     "policies": ["CiliumNetworkPolicy default/l3-rule"], "rules": 1},
    {"id": 12, "ipv4": "10.93.2.13", "identity": 65794, "ingress_enforced": true, "egress_enforced": true,
     "policies": ["CiliumNetworkPolicy default/l3-rule", "NetworkPolicy shop/web"], "rules": 3},
    {"id": 3, "ipv4": "10.93.2.4", "identity": 65795, "ingress_enforced": false, "egress_enforced": false,
     "policies": [], "rules": 0}],
  "rules": [
    {"rule_id": 1, "policy": "CiliumNetworkPolicy default/l3-rule", "direction": "ingress", "index": 0, "deny": false, "l7": false},
    {"rule_id": 2, "policy": "NetworkPolicy shop/web", "direction": "ingress", "index": 0, "deny": false, "l7": false},
    {"rule_id": 3, "policy": "NetworkPolicy shop/web", "direction": "egress", "index": 0, "deny": false, "l7": false},
    {"rule_id": 4, "policy": "CiliumNetworkPolicy shop/web", "direction": "ingress", "index": 0, "deny": true, "l7": false},
    {"rule_id": 5, "policy": "CiliumClusterwideNetworkPolicy l7-api", "direction": "egress", "index": 0, "deny": false, "l7": true},
    {"rule_id": 6, "policy": "CiliumClusterwideNetworkPolicy l7-api", "direction": "egress", "index": 1, "deny": true, "l7": false}],
  "warnings": ["CiliumClusterwideNetworkPolicy l7-api: L7 rules are not enforced yet: only their L4 part is",
               "CiliumNetworkPolicy shop/web: named port \"http\" is not resolved yet (endpoints do not carry their ports): it allows nothing"],
  "datapath_error": ""})";

class MembranectlPolicyTest : public MembranectlTest {
protected:
    // policy-l3l4 loaded, its Status answering `status`.
    void policy_status(const std::string& status) {
        service_.run_on_loop([this, status] {
            service_.service().set_module_methods(
                "policy-l3l4", {{"Status", [status](const std::string&) { return status; }}});
        });
    }
};

TEST_F(MembranectlPolicyTest, ListShowsTotalsThenOneRowPerEndpointThenWarnings) {
    policy_status(kPolicyStatus);
    const auto result = ctl({"policy", "list"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out,
              "enforcement default, 4 policies, 4 rules in the datapath\n"
              "ENDPOINT  ADDRESS     IDENTITY  INGRESS   EGRESS    RULES  POLICIES\n"
              "1         10.93.2.2   65793     enforced  -         1      CiliumNetworkPolicy default/l3-rule\n"
              "12        10.93.2.13  65794     enforced  enforced  3      CiliumNetworkPolicy default/l3-rule, "
              "NetworkPolicy shop/web\n"
              "3         10.93.2.4   65795     -         -         0      -\n"
              "warning: CiliumClusterwideNetworkPolicy l7-api: L7 rules are not enforced yet: only their L4 part is\n"
              "warning: CiliumNetworkPolicy shop/web: named port \"http\" is not resolved yet (endpoints do not "
              "carry their ports): it allows nothing\n");
    const auto table = result.out.find('\n') + 1;
    expect_aligned(result.out.substr(table, result.out.find("warning:") - table),
                   {"ENDPOINT", "ADDRESS", "IDENTITY", "INGRESS", "EGRESS", "RULES", "POLICIES"});
}

TEST_F(MembranectlPolicyTest, ListAsJsonIsTheModulesReply) {
    policy_status(kPolicyStatus);
    for (const auto& args : {std::vector<std::string>{"-o", "json", "policy", "list"},
                             std::vector<std::string>{"policy", "list", "-o", "json"}}) {
        const auto result = ctl(args);
        ASSERT_EQ(result.exit_code, 0) << result.err;
        EXPECT_EQ(result.out, nlohmann::json::parse(kPolicyStatus).dump() + "\n");
    }
}

TEST_F(MembranectlPolicyTest, ListWithoutEndpointsSaysSoAndADatapathErrorIsAnErrorLine) {
    policy_status(R"({"enforcement": "always", "policies": 1, "datapath_rules": 1, "last_compute_ms": 0.2,
                      "endpoints": [], "rules": [], "warnings": [], "datapath_error": "policy rules map is full"})");
    const auto result = ctl({"policy", "list"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out,
              "enforcement always, 1 policy, 1 rule in the datapath\n"
              "no endpoints on this node\n"
              "error: the datapath does not hold every rule (policy rules map is full): the selected endpoints "
              "are closed both ways until a change of policy applies\n");
}

TEST_F(MembranectlPolicyTest, GetByNameNamespaceAndNameOrRefShowsEndpointsAndRules) {
    policy_status(kPolicyStatus);
    const std::string expected =
        "Policy: CiliumNetworkPolicy default/l3-rule\n"
        "\n"
        "ENDPOINT  ADDRESS     INGRESS   EGRESS\n"
        "1         10.93.2.2   enforced  -\n"
        "12        10.93.2.13  enforced  enforced\n"
        "\n"
        "RULE  DIRECTION  INDEX  ACTION\n"
        "1     ingress    0      allow\n";
    for (const std::string name : {"l3-rule", "default/l3-rule", "CiliumNetworkPolicy default/l3-rule"}) {
        const auto result = ctl({"policy", "get", name});
        ASSERT_EQ(result.exit_code, 0) << name << ": " << result.err;
        EXPECT_EQ(result.out, expected) << name;
    }

    const auto json = ctl({"-o", "json", "policy", "get", "NetworkPolicy shop/web"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto status = nlohmann::json::parse(kPolicyStatus);
    EXPECT_EQ(nlohmann::json::parse(json.out),
              nlohmann::json({{"policy", "NetworkPolicy shop/web"},
                              {"endpoints", {status["endpoints"][1]}},
                              {"rules", {status["rules"][1], status["rules"][2]}}}));
}

TEST_F(MembranectlPolicyTest, GetOfAnL7RuleNotesThatOnlyItsL4PartIsEnforced) {
    policy_status(kPolicyStatus);
    const auto result = ctl({"policy", "get", "l7-api"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out,
              "Policy: CiliumClusterwideNetworkPolicy l7-api\n"
              "\n"
              "It selects no endpoint of this node.\n"
              "\n"
              "RULE  DIRECTION  INDEX  ACTION  NOTE\n"
              "5     egress     0      allow   L7 rules not enforced yet: only the L4 part is\n"
              "6     egress     1      deny\n");
}

TEST_F(MembranectlPolicyTest, GetOfNoneOrSeveralExitsOneSayingWhatToType) {
    policy_status(kPolicyStatus);
    const auto missing = ctl({"policy", "get", "nope"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.out, "");
    EXPECT_EQ(missing.err, "membranectl: policy get: no policy named nope selects an endpoint of this node or has "
                           "rules here; `membranectl get cnp` (netpol, ccnp) lists the applied ones\n");
    // A suffix of a name is not its name.
    EXPECT_EQ(ctl({"policy", "get", "rule"}).exit_code, 1);

    for (const std::string name : {"web", "shop/web"}) {
        const auto several = ctl({"policy", "get", name});
        EXPECT_EQ(several.exit_code, 1);
        EXPECT_EQ(several.err, "membranectl: policy get: " + name +
                                   " names 2 policies (CiliumNetworkPolicy shop/web, NetworkPolicy shop/web): give "
                                   "NAMESPACE/NAME, or the whole \"KIND NAMESPACE/NAME\"\n");
    }
}

TEST_F(MembranectlPolicyTest, WithoutTheModuleSaysHowToLoadIt) {
    for (const auto& args : {std::vector<std::string>{"policy", "list"},
                             std::vector<std::string>{"-o", "json", "policy", "get", "l3-rule"}}) {
        const auto result = ctl(args);
        EXPECT_EQ(result.exit_code, 1);
        EXPECT_EQ(result.out, "");
        EXPECT_THAT(result.err, HasSubstr(": policy-l3l4 is not running on this node: load it with `membranectl "
                                          "module load policy-l3l4` (`membranectl module list` shows its state)\n"));
        EXPECT_THAT(result.err, StartsWith("membranectl: policy "));
    }
}

TEST_F(MembranectlPolicyTest, AModuleWithoutStatusIsOfAnotherVersion) {
    service_.run_on_loop([this] {
        service_.service().set_module_methods("policy-l3l4",
                                              {{"Other", [](const std::string&) { return std::string("{}"); }}});
    });
    const auto result = ctl({"policy", "list"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.err, "membranectl: policy list: org.freedesktop.DBus.Error.UnknownMethod: "
                          "policy-l3l4 answers no Status (is it of another version?)\n");

    policy_status("[]");
    const auto not_object = ctl({"policy", "list"});
    EXPECT_EQ(not_object.exit_code, 1);
    EXPECT_EQ(not_object.err,
              "membranectl: policy list: unexpected reply: policy-l3l4 Status is not a JSON object: []\n");
}

// policy-l3l4's Status on the fake's node (endpoints 1 and 2): 1 selected
// both ways by two policies, 2 by none.
const char* const kEndpointPolicyStatus = R"({
  "enforcement": "default", "policies": 2, "datapath_rules": 3, "last_compute_ms": 0.1,
  "endpoints": [
    {"id": 1, "ipv4": "10.10.1.2", "identity": 4096, "ingress_enforced": true, "egress_enforced": true,
     "policies": ["CiliumNetworkPolicy default/l3-rule", "NetworkPolicy default/web"], "rules": 3},
    {"id": 2, "ipv4": "10.10.1.3", "identity": 4097, "ingress_enforced": false, "egress_enforced": false,
     "policies": [], "rules": 0}],
  "rules": [], "warnings": [], "cidrs": [], "datapath_error": ""})";

// What endpoint get prints of the fake's endpoint 1 before its policy.
const std::string kEndpointOne =
    "ID:              1\n"
    "Container:       4f1c2a9b7d3e8f6a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a\n"
    "Interface:       eth0\n"
    "Netns:           /var/run/netns/cni-1\n"
    "Host interface:  mbr1a2b3c4d5e6 (ifindex 11)\n"
    "Address:         10.10.1.2\n"
    "MAC:             0a:58:0a:0a:01:02\n"
    "Identity:        4096\n"
    "Labels:          app=web,k8s:namespace=default\n"
    "State:           ready\n";

TEST_F(MembranectlPolicyTest, EndpointGetShowsTheEnforcedDirectionsThePoliciesAndTheRules) {
    policy_status(kEndpointPolicyStatus);
    const auto result = ctl({"endpoint", "get", "1"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, kEndpointOne +
                              "Policy:          policy-l3l4, enforcement default\n"
                              "  Ingress:       enforced\n"
                              "  Egress:        enforced\n"
                              "  Selected by:   CiliumNetworkPolicy default/l3-rule, NetworkPolicy default/web\n"
                              "  Rules:         3 in the datapath\n");
    EXPECT_EQ(result.err, "");
}

TEST_F(MembranectlPolicyTest, EndpointGetOfAnEndpointNoPolicySelectsSaysNotEnforced) {
    policy_status(kEndpointPolicyStatus);
    const auto result = ctl({"endpoint", "get", "2"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out, HasSubstr("State:           ready\n"
                                      "Policy:          policy-l3l4, enforcement default\n"
                                      "  Ingress:       not enforced\n"
                                      "  Egress:        not enforced\n"
                                      "  Selected by:   no policy\n"
                                      "  Rules:         0 in the datapath\n"));
    EXPECT_THAT(result.out, Not(HasSubstr("Error:")));
    const auto json = ctl({"-o", "json", "endpoint", "get", "2"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(nlohmann::json::parse(json.out)["policy"],
              nlohmann::json::parse(R"({"module": "running", "enforcement": "default", "datapath_error": "",
                                        "ingress_enforced": false, "egress_enforced": false, "policies": [],
                                        "rules": 0})"));
}

TEST_F(MembranectlPolicyTest, EndpointGetAsJsonIsTheEndpointWithItsPolicyUnderPolicy) {
    policy_status(kEndpointPolicyStatus);
    const auto result = ctl({"endpoint", "get", "1", "-o", "json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    auto endpoint = nlohmann::json::parse(result.out);
    EXPECT_EQ(endpoint["policy"],
              nlohmann::json::parse(R"({"module": "running", "enforcement": "default", "datapath_error": "",
                                        "ingress_enforced": true, "egress_enforced": true,
                                        "policies": ["CiliumNetworkPolicy default/l3-rule", "NetworkPolicy default/web"],
                                        "rules": 3})"));
    // Beside it, the endpoint's own keys as endpoint list has them.
    endpoint.erase("policy");
    const auto listed = ctl({"-o", "json", "endpoint", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(endpoint, nlohmann::json::parse(listed.out)[0]);
}

TEST_F(MembranectlPolicyTest, EndpointGetWithoutTheModuleSaysSoAndSucceeds) {
    const auto table = ctl({"endpoint", "get", "1"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    EXPECT_EQ(table.out, kEndpointOne +
                             "Policy:          policy-l3l4 is not running (never loaded: nothing is enforced; unloaded or "
                             "quarantined: its stages drop every packet)\n");
    EXPECT_EQ(table.err, "");

    const auto json = ctl({"-o", "json", "endpoint", "get", "1"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto endpoint = nlohmann::json::parse(json.out);
    EXPECT_EQ(endpoint["address"], "10.10.1.2");
    EXPECT_EQ(endpoint.value("policy", nlohmann::json()),
              nlohmann::json({{"module", "not running"}, {"ingress_enforced", nullptr}, {"egress_enforced", nullptr},
                              {"policies", nlohmann::json::array()}, {"rules", 0},
                              {"message", "policy-l3l4 is not running on this node: load it with `membranectl "
                                          "module load policy-l3l4` (`membranectl module list` shows its state)"}}));
}

TEST_F(MembranectlPolicyTest, EndpointGetSaysWhenTheMapsMayNotMatchAndWhenTheModuleDoesNotListIt) {
    policy_status(R"({"enforcement": "always", "policies": 1, "datapath_rules": 1, "last_compute_ms": 0.2,
                      "endpoints": [], "rules": [], "warnings": [], "datapath_error": "policy rules map is full"})");
    const auto result = ctl({"endpoint", "get", "1"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, kEndpointOne +
                              "Policy:          policy-l3l4, enforcement always\n"
                              "                 policy-l3l4 does not list endpoint 1 yet: ask again in a moment\n"
                              "  Error:         the datapath does not hold every rule (policy rules map is full): the "
                              "maps may not match the policies; the endpoints a policy selects are closed both ways "
                              "(fail-closed) until a change of policy applies\n");
    const auto json = ctl({"-o", "json", "endpoint", "get", "1"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto policy = nlohmann::json::parse(json.out)["policy"];
    EXPECT_EQ(policy["datapath_error"], "policy rules map is full");
    EXPECT_FALSE(policy.contains("ingress_enforced")) << "not listed: not claimed either way";
}

TEST_F(MembranectlPolicyTest, EndpointGetWithAStatusItCannotReadPrintsTheEndpointThenFails) {
    service_.run_on_loop([this] {
        service_.service().set_module_methods("policy-l3l4",
                                              {{"Other", [](const std::string&) { return std::string("{}"); }}});
    });
    const auto result = ctl({"endpoint", "get", "1"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.out, kEndpointOne +
                              "Policy:          unknown: policy-l3l4 answers no Status (is it of another version?)\n");
    EXPECT_EQ(result.err, "membranectl: endpoint get 1: org.freedesktop.DBus.Error.UnknownMethod: "
                          "policy-l3l4 answers no Status (is it of another version?)\n");
}

TEST_F(MembranectlPolicyTest, UsageErrorsExitTwoAndHelpExplains) {
    EXPECT_EQ(ctl({"policy"}).exit_code, 2);
    EXPECT_EQ(ctl({"policy", "get"}).exit_code, 2);
    EXPECT_EQ(ctl({"policy", "list", "extra"}).exit_code, 2);
    const auto help = ctl({"policy", "get", "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_THAT(help.out, HasSubstr("NAMESPACE/NAME"));
    EXPECT_THAT(ctl({"policy", "--help"}).out, HasSubstr("policy-l3l4"));
    EXPECT_THAT(ctl({"endpoint", "get", "--help"}).out, HasSubstr("policy-l3l4 is not running"));
}

TEST_F(MembranectlTest, UnreachableBusNamesItAndSuggestsBus) {
    const auto result = run_process({MEMBRANECTL_PATH, "--bus", "unix:path=/nonexistent/bus", "status"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.err, StartsWith("membranectl: cannot connect to the bus at unix:path=/nonexistent/bus: "
                                       "org.freedesktop.DBus.Error.FileNotFound: "));
    EXPECT_THAT(result.err, HasSubstr("--bus"));
}

TEST_F(MembranectlTest, AgentNotRunningSaysSo) {
    PrivateDbusDaemon empty_bus;
    const auto result = run_process({MEMBRANECTL_PATH, "--bus", empty_bus.address(), "status"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_THAT(result.err, StartsWith("membranectl: status: org.freedesktop.DBus.Error.ServiceUnknown: "));
    EXPECT_THAT(result.err, HasSubstr("is membraned running"));
}

}  // namespace
}  // namespace membrane::test
