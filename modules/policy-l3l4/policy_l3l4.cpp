// policy-l3l4: identity-based L3/L4 network policy in BPF, from
// NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy
// objects (`membranectl apply`, the cluster store). The module fills the
// egress and ingress policy stages with fail-closed programs and keeps two
// pinned maps (bpf/policy_maps.h) equal to what compile() makes of the
// model: policies, this node's endpoints, the cluster's identities and the
// namespaces' labels. Any change of those recomputes once per loop turn, for
// the endpoints the changes affect (incremental_compiler.hpp), and writes
// only the difference.
//
// [module.policy-l3l4] keys (all optional):
//   enforcement = "default"  # "default": where a policy selects; "always":
//                            # every endpoint, default deny; "never"
#include <arpa/inet.h>

#include <chrono>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include <membrane/membrane.hpp>
#include <membrane/policy_parse.hpp>

#include "incremental_compiler.hpp"
#include "policy_compiler.hpp"
#include "policy_maps.hpp"
#include "policy_trace.hpp"

MEMBRANE_EMBEDDED_BPF(policy_l3l4_bpf)

namespace policy_l3l4 {
namespace {

namespace events = membrane::events;
namespace policy = membrane::policy;

// Asks for a recomputation on the next loop turn: the bus delivers it after
// the events already queued, so a burst of changes costs one.
struct RecomputeRequested {
    static constexpr std::string_view kTopic = "policy-l3l4.recompute";
};

std::string object_key(const std::string& kind, const std::string& ns, const std::string& name) {
    return kind + "/" + ns + "/" + name;
}

Enforcement read_enforcement(const membrane::Context& ctx) {
    membrane::ConfigReader read(ctx.config(), "module." + ctx.module_name());
    const auto mode = read.get<std::string>("enforcement", "default");
    read.finish();
    if (mode == "default") return Enforcement::selected;
    if (mode == "always") return Enforcement::always;
    if (mode == "never") return Enforcement::never;
    throw read.error("enforcement", "must be \"default\", \"always\" or \"never\", not \"" + mode + "\"");
}

std::string_view enforcement_name(Enforcement mode) {
    switch (mode) {
        case Enforcement::selected: return "default";
        case Enforcement::always: return "always";
        case Enforcement::never: return "never";
    }
    return "default";
}

class PolicyL3L4 final : public membrane::Module {
public:
    void start(membrane::Context& ctx) override {
        ctx_ = &ctx;
        mode_ = read_enforcement(ctx);
        membrane::BpfObject& object = ctx.bpf().load(
            {.name = "policy-l3l4",
             .elf = policy_l3l4_bpf(),
             .persistent_maps = {POLICY_MAP_ENDPOINTS, POLICY_MAP_RULES, POLICY_MAP_CIDRS}});
        maps_.emplace(object.map_fd(POLICY_MAP_ENDPOINTS), object.map_fd(POLICY_MAP_RULES), object.map_fd(POLICY_MAP_CIDRS));
        cidr_numbers_ = maps_->cidr_numbers();

        for (const auto kind : {policy::kNetworkPolicy, policy::kCiliumNetworkPolicy, policy::kCiliumClusterwideNetworkPolicy}) {
            for (const auto& object_info : ctx.model().objects(std::string(kind))) {
                remember(object_info.kind, object_info.namespace_, object_info.name, object_info.document);
            }
        }
        for (const auto& ns : ctx.model().objects("Namespace")) remember_namespace(ns.name, ns.document);
        subscribe();
        // The maps hold what this model means before a packet meets the stages.
        changes_.everything = true;
        recompute();
        ctx.bpf().attach_stage(MBR_STAGE_EGRESS_POLICY, object, "policy_egress", membrane::EmptySlot::drop);
        ctx.bpf().attach_stage(MBR_STAGE_INGRESS_POLICY, object, "policy_ingress", membrane::EmptySlot::drop);
        ctx.add_method("Status", [this](const std::string&) { return status_json(); });
        ctx.add_method("Trace", [this](const std::string& request) { return trace_json(request); });
        ctx.log().info("enforcement {}, {} policies, {} rules in the datapath", enforcement_name(mode_),
                       policies_.size(), maps_->rule_count());
    }

    void stop() override { subscriptions_.clear(); }

private:
    void subscribe() {
        auto& bus = ctx_->bus();
        subscriptions_.push_back(bus.subscribe<events::ObjectApplied>([this](const events::ObjectApplied& e) {
            if (e.kind == "Namespace") {
                remember_namespace(e.name, e.document);
            } else if (policy::is_policy_kind(e.kind)) {
                remember(e.kind, e.namespace_, e.name, e.document);
                changes_.policies = true;
            } else {
                return;
            }
            request();
        }));
        subscriptions_.push_back(bus.subscribe<events::ObjectDeleted>([this](const events::ObjectDeleted& e) {
            if (e.kind == "Namespace") {
                namespaces_.erase(e.name);
            } else if (policy::is_policy_kind(e.kind)) {
                policies_.erase(object_key(e.kind, e.namespace_, e.name));
                changes_.policies = true;
            } else {
                return;
            }
            request();
        }));
        // The recomputation finds which endpoints and identities changed by
        // comparing the model with the last inputs (incremental_compiler.hpp):
        // these events only ask for it.
        subscriptions_.push_back(bus.subscribe<events::EndpointCreated>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::EndpointUpdated>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::EndpointDeleted>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::IdentityAdded>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::IdentityRemoved>([this](const auto&) { request(); }));
        // Other nodes' pods: an egress named port means their declared port.
        subscriptions_.push_back(bus.subscribe<events::RemoteEndpointUpdated>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<events::RemoteEndpointRemoved>([this](const auto&) { request(); }));
        subscriptions_.push_back(bus.subscribe<RecomputeRequested>([this](const RecomputeRequested&) {
            pending_ = false;
            recompute();
        }));
    }

    // A document the agent checked when it was applied; one it cannot read
    // (a newer writer) is left out, loudly, and its old version with it.
    void remember(const std::string& kind, const std::string& ns, const std::string& name, const std::string& document) {
        const std::string key = object_key(kind, ns, name);
        try {
            policies_[key] = policy::parse_policy(kind, nlohmann::json::parse(document));
        } catch (const std::exception& error) {
            policies_.erase(key);
            ctx_->log().error("{} {}/{} is not enforced: {}", kind, ns, name, error.what());
        }
    }

    void remember_namespace(const std::string& name, const std::string& document) {
        try {
            const auto json = nlohmann::json::parse(document);
            membrane::Labels labels;
            if (const auto metadata = json.find("metadata"); metadata != json.end()) {
                if (const auto found = metadata->find("labels"); found != metadata->end()) labels = found->get<membrane::Labels>();
            }
            namespaces_[name] = std::move(labels);
        } catch (const std::exception& error) {
            ctx_->log().error("Namespace {} is not read: {}", name, error.what());
        }
    }

    void request() {
        if (pending_) return;
        pending_ = true;
        ctx_->bus().publish(RecomputeRequested{});
    }

    // What compile() computes from: the model as it is now.
    Inputs current_inputs() const {
        Inputs inputs;
        for (const auto& [key, list] : policies_) inputs.policies.insert(inputs.policies.end(), list.begin(), list.end());
        inputs.endpoints = ctx_->model().endpoints();
        for (const auto& endpoint : inputs.endpoints) {
            if (auto ports = ctx_->model().endpoint_ports(endpoint.id); !ports.empty()) inputs.endpoint_ports[endpoint.id] = ports;
        }
        for (const auto& remote : ctx_->model().remote_endpoints()) {
            if (remote.ports.empty()) continue;
            auto& ports = inputs.remote_ports[remote.identity];
            ports.insert(ports.end(), remote.ports.begin(), remote.ports.end());
        }
        inputs.identities = ctx_->model().identities();
        inputs.namespaces = namespaces_;
        inputs.mode = mode_;
        inputs.cidr_numbers = cidr_numbers_;
        return inputs;
    }

    void recompute() {
        const auto began = std::chrono::steady_clock::now();
        Inputs inputs = current_inputs();
        const auto compute_began = std::chrono::steady_clock::now();
        const Compiled& compiled = compiler_.update(std::move(inputs), changes_);
        changes_ = {};
        last_compute_only_ms_ =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - compute_began).count();
        cidr_numbers_ = compiled.cidr_numbers;
        for (const auto& warning : compiled.warnings) {
            if (warned_.insert(warning).second) ctx_->log().warn("{}", warning);
        }
        try {
            datapath_error_.clear();
            const auto written = maps_->apply(compiled);
            last_compute_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
            if (written.rules_written + written.rules_deleted + written.endpoints_changed > 0) {
                ctx_->log().info("{} rules written, {} deleted, {} endpoints changed in {:.1f} ms ({} rules)",
                                 written.rules_written, written.rules_deleted, written.endpoints_changed, last_compute_ms_,
                                 maps_->rule_count());
            }
        } catch (const std::exception& error) {
            // Fail closed: every endpoint a policy selects is enforced both
            // ways with whatever rules made it; the next change tries again.
            datapath_error_ = error.what();
            std::vector<std::uint32_t> selected;
            for (const auto& [id, policies] : compiled.selected_by) selected.push_back(static_cast<std::uint32_t>(id));
            for (const auto& [id, enforcement] : compiled.endpoints) selected.push_back(id);
            maps_->fail_closed(selected);
            ctx_->log().error("the datapath does not hold every rule ({}): the selected endpoints are closed both ways "
                              "until a change of policy applies",
                              datapath_error_);
        }
    }

    std::string status_json() const {
        const Compiled& compiled = compiler_.compiled();
        std::map<std::uint32_t, std::size_t> rules_of;  // endpoint -> its datapath rules, in one pass
        for (const auto& [key, verdict] : compiled.rules) ++rules_of[key.endpoint];
        nlohmann::json endpoints = nlohmann::json::array();
        for (const auto& endpoint : ctx_->model().endpoints()) {
            nlohmann::json entry{{"id", endpoint.id}, {"ipv4", endpoint.ipv4}, {"identity", endpoint.identity}};
            const auto enforced = compiled.endpoints.find(static_cast<std::uint32_t>(endpoint.id));
            entry["ingress_enforced"] = enforced != compiled.endpoints.end() && enforced->second.ingress;
            entry["egress_enforced"] = enforced != compiled.endpoints.end() && enforced->second.egress;
            const auto selected = compiled.selected_by.find(endpoint.id);
            entry["policies"] = selected == compiled.selected_by.end() ? std::vector<std::string>{} : selected->second;
            // An id past 32 bits is never in the maps (compile() leaves it out).
            const auto rules = endpoint.id > 0xffffffffu ? rules_of.end() : rules_of.find(static_cast<std::uint32_t>(endpoint.id));
            entry["rules"] = rules == rules_of.end() ? 0 : rules->second;
            endpoints.push_back(std::move(entry));
        }
        nlohmann::json origins = nlohmann::json::array();
        for (std::size_t i = 0; i < compiled.origins.size(); ++i) {
            const auto& origin = compiled.origins[i];
            origins.push_back({{"rule_id", i + 1}, {"policy", origin.policy}, {"direction", origin.direction},
                               {"index", origin.index}, {"deny", origin.deny}, {"l7", origin.l7}});
        }
        std::size_t count = 0;
        for (const auto& [key, list] : policies_) count += list.size() > 0 ? 1 : 0;
        return nlohmann::json{{"enforcement", enforcement_name(mode_)},
                              {"policies", count},
                              {"datapath_rules", maps_->rule_count()},
                              {"last_compute_ms", last_compute_ms_},
                              {"last_compute", last_compute_json()},
                              {"endpoints", endpoints},
                              {"rules", origins},
                              {"warnings", compiled.warnings},
                              {"cidrs", cidrs_json()},
                              {"datapath_error", datapath_error_}}
            .dump();
    }

    // `membranectl policy trace`'s control-plane half. Request: {"source":
    // {"ip", "identity"}, "destination": {...}, "protocol": IPPROTO_*,
    // "port": N}; the identities as the agent's model has them (they count
    // for what is no pod). Reply: {"egress": side or null (the source is no
    // pod), "ingress": side or null}, side = {"enforced", "verdict"
    // (allowed|denied), "rule_id", "policy", "direction", "index", "deny"}.
    std::string trace_json(const std::string& request_text) const {
        const auto request = nlohmann::json::parse(request_text, nullptr, false);
        if (!request.is_object()) throw std::invalid_argument("the request is not a JSON object");
        // An unsigned integer in [low, high] at `path` ("source.identity"), else an error naming it.
        const auto number = [&](const std::string& path, std::uint64_t low, std::uint64_t high) {
            const nlohmann::json* at = &request;
            for (std::size_t from = 0, dot = 0; dot != std::string::npos; from = dot + 1) {
                dot = path.find('.', from);
                const auto key = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
                if (!at->is_object() || !at->contains(key)) throw std::invalid_argument(path + " is missing");
                at = &(*at)[key];
            }
            if (!at->is_number_unsigned() || at->get<std::uint64_t>() < low || at->get<std::uint64_t>() > high) {
                throw std::invalid_argument(path + ": " + at->dump() + " is not a number from " + std::to_string(low) +
                                            " to " + std::to_string(high));
            }
            return at->get<std::uint64_t>();
        };
        const auto subject = [&](const char* key) {
            const auto found = request.find(key);
            if (found == request.end() || !found->is_object() || !found->contains("ip") || !(*found)["ip"].is_string())
                throw std::invalid_argument(std::string(key) + ".ip is missing (an IPv4 address)");
            const auto& side = *found;
            const std::string ip = side.at("ip").get<std::string>();
            in_addr parsed{};
            if (inet_pton(AF_INET, ip.c_str(), &parsed) != 1)
                throw std::invalid_argument(std::string(key) + ".ip: \"" + ip + "\" is not an IPv4 address");
            TraceSubject out{.address = ntohl(parsed.s_addr),
                             .identity = static_cast<std::uint32_t>(number(std::string(key) + ".identity", 0, 0xffffffff))};
            for (const auto& endpoint : ctx_->model().endpoints()) {
                if (endpoint.ipv4 != ip) continue;
                out.pod = endpoint;
                out.identity = endpoint.identity;
                return out;
            }
            for (const auto& remote : ctx_->model().remote_endpoints()) {
                if (remote.ipv4 != ip) continue;
                // Another node's pod, as its node compiles it: its identity's labels.
                membrane::EndpointInfo pod{.ipv4 = ip, .identity = remote.identity};
                for (const auto& identity : ctx_->model().identities())
                    if (identity.id == remote.identity) pod.labels = identity.labels;
                out.pod = pod;
                out.identity = remote.identity;
                out.ports = remote.ports;
                return out;
            }
            return out;
        };
        const auto protocol = static_cast<std::uint8_t>(number("protocol", 0, 255));
        if (protocol != 1 && protocol != 6 && protocol != 17)
            throw std::invalid_argument("protocol: " + std::to_string(protocol) + " is not 1 (ICMP), 6 (TCP) or 17 (UDP)");
        const auto port = static_cast<std::uint16_t>(number("port", 0, 65535));
        const PolicyTrace trace = trace_policy(current_inputs(), subject("source"), subject("destination"), protocol, port);
        const auto side = [](const std::optional<SideVerdict>& verdict) -> nlohmann::json {
            if (!verdict) return nullptr;
            nlohmann::json out{{"enforced", verdict->enforced},
                               {"verdict", verdict->allowed ? "allowed" : "denied"},
                               {"rule_id", verdict->rule_id}};
            if (verdict->origin) {
                out["policy"] = verdict->origin->policy;
                out["direction"] = verdict->origin->direction;
                out["index"] = verdict->origin->index;
                out["deny"] = verdict->origin->deny;
            }
            return out;
        };
        return nlohmann::json{{"enforcement", enforcement_name(mode_)},
                              {"egress", side(trace.egress)},
                              {"ingress", side(trace.ingress)}}
            .dump();
    }

    // How the last computation went: all endpoints ("full", and why) or only
    // those the changes affect ("incremental"); `ms` is the computation
    // alone, last_compute_ms the computation and the map writes.
    nlohmann::json last_compute_json() const {
        const ComputeReport& report = compiler_.last();
        nlohmann::json out{{"kind", compute_kind_name(report.kind)}, {"endpoints", report.endpoints}, {"ms", last_compute_only_ms_}};
        if (report.kind == ComputeReport::Kind::full) out["why"] = report.why;
        return out;
    }

    nlohmann::json cidrs_json() const {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [prefix, ids] : compiler_.compiled().cidrs) {
            out.push_back({{"cidr", prefix}, {"world_identity", ids.world}, {"any_identity", ids.any}});
        }
        return out;
    }

    membrane::Context* ctx_ = nullptr;
    Enforcement mode_ = Enforcement::selected;
    std::optional<PolicyMaps> maps_;
    std::map<std::string, std::vector<policy::Policy>> policies_;  // by object_key
    std::map<std::string, membrane::Labels> namespaces_;
    std::vector<membrane::Subscription> subscriptions_;
    IncrementalCompiler compiler_;  // what the maps must hold, and how the last computation went
    Changes changes_;               // since the last recomputation
    std::set<std::string> warned_;
    bool pending_ = false;
    double last_compute_ms_ = 0;       // computation and map writes
    double last_compute_only_ms_ = 0;  // computation alone
    std::string datapath_error_;  // the last apply's failure: Status says the maps are not what the policies say
    std::map<std::string, std::uint32_t> cidr_numbers_;  // prefix -> number: identities stay with their prefix
};

}  // namespace
}  // namespace policy_l3l4

MEMBRANE_MODULE(policy_l3l4::PolicyL3L4, "policy-l3l4")
