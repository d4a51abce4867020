// An AgentControl with fixed answers and one failure per ControlErrorKind,
// selected by module name. Records calls and the thread they ran on.
#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_control.hpp"

namespace membrane::test {

using kernel::ControlError;
using kernel::ControlErrorKind;

class FakeAgentControl final : public kernel::AgentControl {
public:
    struct Call {
        std::string what;  // "load x", "unload x", "reload x"
        std::thread::id thread;
    };

    kernel::AgentStatus status() const override {
        record("status");
        kernel::AgentStatus s;
        s.node = "node-a";
        s.version = "0.1.0-test";
        s.state = kernel::AgentState::running;
        s.uptime_seconds = 42;
        s.pin_dir = "/run/membrane/bpffs/membrane/node-a";
        s.config_path = "/etc/membrane/membrane.toml";
        s.devices = {"eth0", "vxlan0"};
        s.modules_running = 1;
        s.modules_failed = 1;
        if (with_kvstore) {
            s.kvstore_state = "connected";
            s.kvstore_endpoint = "https://192.168.50.254:2379";
            s.kvstore_revision = 153;
            s.cluster_name = "lab";
            s.cluster_id = 3;
            s.kvstore_since = 1796245384;  // 2026-12-02 21:03:04 UTC
            s.kvstore_connects = 2;
            s.kvstore_lag_ms = 1234;
            s.kvstore_lease = "6a6ca2388e9e0e12";
            s.kvstore_lease_ttl = 30;
            s.kvstore_watches = {{"membrane/v1/lab/endpoints/", 150}, {"membrane/v1/lab/nodes/", 0}};
            s.kvstore_error = "https://192.168.50.254:2379: connection refused";
        }
        if (with_manifests) {
            s.manifests_dir = "/etc/membrane/manifests";
            s.manifests_files = 2;
            s.manifests_problems = {{"/etc/membrane/manifests/shop.yaml",
                                     "/etc/membrane/manifests/shop.yaml: document 2 (line 13): kind: missing"},
                                    {"/etc/membrane/manifests/bank.yaml", "not applied yet, tried again in a moment"}};
        }
        return s;
    }
    // status() reports a connected cluster store (set before the call, on the loop).
    bool with_kvstore = false;
    // status() reports a manifests folder with two problems.
    bool with_manifests = false;

    std::vector<kernel::ModuleStatus> modules() const override {
        record("modules");
        return {
            {"policy", kernel::ModuleState::running, 3, "/usr/lib/membrane/modules/policy.so", "1.0", "", {2, 4}},
            {"lb-maglev", kernel::ModuleState::failed, 1, "/usr/lib/membrane/modules/lb-maglev.so", "1.0", "start threw: boom", {}},
        };
    }

    std::vector<kernel::StatCounter> stats() const override {
        record("stats");
        return {{"entry_from_netdev", 7}, {"pipeline_done", 0}, {"drop_invalid", 2}, {"reason_15", 1}};
    }

    kernel::PacketTrace trace_packet(const kernel::TraceRequest& request) const override {
        record("trace " + request.from + " " + request.to + " " + request.protocol + " " + std::to_string(request.port));
        kernel::PacketTrace trace;
        trace.source = {.kind = kernel::TracePeer::Kind::local_pod, .ip = "10.1.1.2", .identity = 256,
                        .namespace_ = "shop", .pod = "web-1"};
        trace.destination = {.kind = kernel::TracePeer::Kind::world, .ip = "203.0.113.9", .identity = 2};
        trace.source_port = 40000;
        trace.entry_program = MBR_ENTRY_FROM_ENDPOINT;
        trace.entry_device = "lxc1";
        kernel::TraceStep entry;
        entry.program = MBR_ENTRY_FROM_ENDPOINT;
        entry.action = kernel::TraceStep::Action::handed_on;
        entry.counted = MBR_STAT_ENTRY_FROM_ENDPOINT;
        kernel::TraceStep policy;
        policy.stage = MBR_STAGE_EGRESS_POLICY;
        policy.program = "policy-l3l4/policy_egress";
        policy.action = kernel::TraceStep::Action::dropped;
        policy.counted = MBR_STAT_DROP_POLICY;
        policy.event = mbr_event{};
        policy.event->type = MBR_EVENT_DROP;
        policy.event->rule_id = 7;
        trace.steps = {entry, policy};
        return trace;
    }

    kernel::FlowPage flows(std::uint64_t after, std::uint32_t max) const override {
        record("flows " + std::to_string(after) + " " + std::to_string(max));
        kernel::FlowEvent event;
        event.seq = 3;
        event.type = "drop";
        event.verdict = "dropped";
        event.reason = "drop_policy";
        event.protocol = "TCP";
        event.source = "10.1.1.2";
        event.source_port = 43210;
        event.destination = "10.1.2.3";
        event.destination_port = 80;
        event.destination_peer = {"shop", "db-1", "node2", {{"app", "db"}}};
        event.rule_id = 7;
        return {{event}, 3, 1};
    }

    void load_module(const std::string& name) override {
        record("load " + name);
        fail_for(name);
        if (name == "policy") throw ControlError(ControlErrorKind::AlreadyLoaded, "module policy is already loaded");
        if (on_load) on_load(name);
    }
    // "policy" holds a fail-closed stage (2): refused without force.
    void unload_module(const std::string& name, bool force) override {
        record("unload " + name + (force ? " --force" : ""));
        fail_for(name);
        if (name == "policy" && !force) {
            throw ControlError(ControlErrorKind::NeedsForce,
                               "module policy not unloaded: stage 2 (egress-policy) is fail-closed: packets through "
                               "it will be dropped until a module fills it. Unload with --force to do it anyway");
        }
    }
    void reload_module(const std::string& name) override {
        record("reload " + name);
        fail_for(name);
    }

    // Objects: "bad" in the text is refused as the parser would, "away" as a
    // store away; otherwise each call succeeds with a fixed answer.
    void apply_objects(const std::string& source, const std::string& text, ApplyDone done) override {
        record("apply " + source);
        if (text.find("bad") != std::string::npos) {
            throw ControlError(ControlErrorKind::InvalidArgument,
                               source + ": document 2 (line 7): metadata.name: \"Bad\" must be a DNS label");
        }
        if (text.find("away") != std::string::npos) {
            done(ControlError(ControlErrorKind::Unavailable, "the kvstore did not take it (unavailable: etcd: not connected)"),
                 {});
            return;
        }
        done(std::nullopt, {{"Namespace", "", "shop", "created"}, {"Namespace", "", "bank", "unchanged"}});
    }
    void delete_object(const std::string& kind, const std::string& namespace_, const std::string& name,
                       std::function<void(std::optional<ControlError>)> done) override {
        record("delete " + kind + " " + namespace_ + "/" + name);
        if (kind == "pods") throw ControlError(ControlErrorKind::InvalidArgument, "'pods' is not a kind Membrane keeps");
        if (name == "missing") {
            done(ControlError(ControlErrorKind::NotFound, "Namespace missing does not exist"));
            return;
        }
        done(std::nullopt);
    }
    std::vector<std::string> list_objects(const std::string& kind, const std::string& namespace_,
                                          const std::string& name) const override {
        record("list " + kind + " " + namespace_ + "/" + name);
        if (name == "missing") throw ControlError(ControlErrorKind::NotFound, "Namespace missing does not exist");
        return {R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bank"}})",
                R"({"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"team":"a"},"name":"shop"}})"};
    }

    std::vector<Call> calls() const {
        std::lock_guard lock(mutex_);
        return calls_;
    }

    // Runs inside LoadModule on the loop thread (e.g. a module adding methods).
    std::function<void(const std::string&)> on_load;

private:
    static void fail_for(const std::string& name) {
        if (name == "missing")
            throw ControlError(ControlErrorKind::NotFound, "no module file missing.so in /usr/lib/membrane/modules");
        if (name == "old-abi")
            throw ControlError(ControlErrorKind::AbiMismatch, "module old-abi was built for SDK 0.9, agent has 1.0");
        if (name == "crashy") throw ControlError(ControlErrorKind::StartFailed, "module crashy: start() threw: boom");
        if (name.empty()) throw ControlError(ControlErrorKind::InvalidArgument, "empty module name");
        if (name == "oops") throw std::runtime_error("disk on fire");
    }

    void record(std::string what) const {
        std::lock_guard lock(mutex_);
        calls_.push_back({std::move(what), std::this_thread::get_id()});
    }

    mutable std::mutex mutex_;
    mutable std::vector<Call> calls_;
};

}  // namespace membrane::test
