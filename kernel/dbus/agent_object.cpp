#include "dbus/agent_object.hpp"

#include "dbus/control_codec.hpp"
#include "dbus/dbus_errors.hpp"
#include "membrane/dbus/names.hpp"
#include "membrane/stage_names.hpp"
#include "membrane/stat_names.hpp"

namespace membrane::kernel {

using membrane::dbus::endpoint_to_dictionary;

namespace {

// What a caller who is not an admin may not see of an endpoint: which
// container it is and where its namespace lives.
membrane::EndpointInfo redacted(membrane::EndpointInfo endpoint) {
    endpoint.container_id.clear();
    endpoint.netns.clear();
    return endpoint;
}

}  // namespace

AgentObject::AgentObject(sdbus::IConnection& connection, AgentControl& control, EndpointControl& endpoints,
                         const CallerAccess& access)
    : AdaptorInterfaces(connection, membrane::dbus::kAgentObjectPath),
      control_(control),
      endpoints_(endpoints),
      access_(access) {
    registerAdaptor();
}

namespace {

// Answers every call still waiting with an error, as the object goes.
template <class Pending>
void abandon(Pending& pending, const char* message) {
    for (auto& [id, result] : pending) {
        try {
            result.returnError(sdbus::Error(dbus_error_name(control_error_name(ControlErrorKind::Failed)), message));
        } catch (...) {
            // The bus is gone already: there is nobody to answer.
        }
    }
    pending.clear();
}

// Takes a waiting call's reply out of `pending` (nullopt if it was answered already).
template <class Pending>
auto take(Pending& pending, std::uint64_t which) -> std::optional<typename Pending::mapped_type> {
    auto it = pending.find(which);
    if (it == pending.end()) return std::nullopt;
    auto reply = std::move(it->second);
    pending.erase(it);
    return reply;
}

// A reply that cannot be sent (the caller or the bus went) is nobody's loss;
// it must not escape into the loop.
template <class Reply>
void send_error(Reply& reply, const sdbus::Error& error) {
    try {
        reply.returnError(error);
    } catch (...) {
    }
}

}  // namespace

AgentObject::~AgentObject() {
    *alive_ = false;
    // An endpoint change waits before it changes anything; an object's write
    // may be on its way to the store.
    abandon(pending_, "the agent stopped before the call was done; nothing was changed");
    abandon(pending_applies_, "the agent stopped before the store answered; `membranectl get` shows what is applied");
    abandon(pending_deletes_, "the agent stopped before the store answered; `membranectl get` shows what is left");
    unregisterAdaptor();
}

const sdbus::Message& AgentObject::current_call() const {
    const sdbus::Message* call = getObject().getCurrentlyProcessedMessage();
    if (!call) throw sdbus::Error(dbus_error_name("Failed"), "no D-Bus call is being processed");
    return *call;
}

template <class Call>
auto AgentObject::answer(Call&& call) {
    try {
        access_.check(current_call());
        return call();
    } catch (...) {
        throw current_exception_as_dbus_error(dbus_error_name(control_error_name(ControlErrorKind::Failed)));
    }
}

template <class Result, class Start>
void AgentObject::answer_later(std::map<std::uint64_t, Result>& pending, Result&& result, Start start) {
    const auto failed = dbus_error_name(control_error_name(ControlErrorKind::Failed));
    try {
        access_.check(current_call());
    } catch (...) {
        send_error(result, current_exception_as_dbus_error(failed));
        return;
    }
    const std::uint64_t id = next_pending_++;
    pending.emplace(id, std::move(result));
    // Sends the reply once, if it is still waiting (not answered by ~AgentObject).
    auto answer = [alive = std::weak_ptr<bool>(alive_), &pending, id, failed](auto fill) {
        if (alive.expired()) return;
        auto reply = take(pending, id);
        if (!reply) return;
        try {
            fill(*reply);
        } catch (...) {
            send_error(*reply, current_exception_as_dbus_error(failed));
        }
    };
    try {
        start(answer);
    } catch (...) {
        // Refused before anything was started (a bad request, manifests that do not parse).
        if (auto reply = take(pending, id)) send_error(*reply, current_exception_as_dbus_error(failed));
    }
}

template <class Change>
void AgentObject::answer_after_identity(sdbus::Result<Dictionary>&& result, const membrane::Labels& labels,
                                        Change change) {
    answer_later(pending_, std::move(result), [&](auto answer) {
        endpoints_.prepare_identity(labels, [answer, change = std::move(change)](std::optional<IdentityProblem> problem) {
            answer([&](sdbus::Result<Dictionary>& reply) {
                // The identity comes from the cluster store: the store away
                // passes (membrane-cni: try again later); no numbers left does not.
                if (problem) {
                    throw ControlError(problem->transient ? ControlErrorKind::Unavailable : ControlErrorKind::Failed,
                                       problem->message);
                }
                reply.returnResults(endpoint_to_dictionary(change()));
            });
        });
    });
}

void AgentObject::Apply(sdbus::Result<std::vector<OutcomeEntry>>&& result, std::string source, std::string manifests) {
    answer_later(pending_applies_, std::move(result), [&](auto answer) {
        control_.apply_objects(source, manifests,
                               [answer](std::optional<ControlError> problem, std::vector<ObjectOutcome> outcomes) {
                                   answer([&](sdbus::Result<std::vector<OutcomeEntry>>& reply) {
                                       if (problem) throw *problem;
                                       std::vector<OutcomeEntry> entries;
                                       for (const auto& o : outcomes) {
                                           entries.emplace_back(o.kind, o.namespace_, o.name, o.action);
                                       }
                                       reply.returnResults(entries);
                                   });
                               });
    });
}

void AgentObject::DeleteObject(sdbus::Result<>&& result, std::string kind, std::string namespace_, std::string name) {
    answer_later(pending_deletes_, std::move(result), [&](auto answer) {
        control_.delete_object(kind, namespace_, name, [answer](std::optional<ControlError> problem) {
            answer([&](sdbus::Result<>& reply) {
                if (problem) throw *problem;
                reply.returnResults();
            });
        });
    });
}

std::vector<std::string> AgentObject::ListObjects(const std::string& kind, const std::string& namespace_,
                                                  const std::string& name) {
    return answer([&] { return control_.list_objects(kind, namespace_, name); });
}

membrane::dbus::Dictionary AgentObject::endpoint_reply(const membrane::EndpointInfo& endpoint) const {
    return endpoint_to_dictionary(access_.is_admin(current_call()) ? endpoint : redacted(endpoint));
}

std::map<std::string, sdbus::Variant> AgentObject::GetStatus() {
    return answer([&] {
        const AgentStatus status = control_.status();
        return std::map<std::string, sdbus::Variant>{
            {"node", sdbus::Variant(status.node)},
            {"version", sdbus::Variant(status.version)},
            {"state", sdbus::Variant(std::string(agent_state_name(status.state)))},
            {"uptime_seconds", sdbus::Variant(status.uptime_seconds)},
            {"pin_dir", sdbus::Variant(status.pin_dir)},
            {"config_path", sdbus::Variant(status.config_path)},
            {"devices", sdbus::Variant(status.devices)},
            {"modules_running", sdbus::Variant(status.modules_running)},
            {"modules_failed", sdbus::Variant(status.modules_failed)},
            {"pod_mtu", sdbus::Variant(status.pod_mtu)},
            {"kvstore_state", sdbus::Variant(status.kvstore_state)},
            {"kvstore_endpoint", sdbus::Variant(status.kvstore_endpoint)},
            {"kvstore_revision", sdbus::Variant(status.kvstore_revision)},
            {"kvstore_error", sdbus::Variant(status.kvstore_error)},
            {"cluster_name", sdbus::Variant(status.cluster_name)},
            {"cluster_id", sdbus::Variant(status.cluster_id)},
            {"kvstore_since", sdbus::Variant(status.kvstore_since)},
            {"kvstore_connects", sdbus::Variant(status.kvstore_connects)},
            {"kvstore_lag_ms", sdbus::Variant(status.kvstore_lag_ms)},
            {"kvstore_lease", sdbus::Variant(status.kvstore_lease)},
            {"kvstore_lease_ttl", sdbus::Variant(status.kvstore_lease_ttl)},
            {"kvstore_watches", sdbus::Variant(status.kvstore_watches)},
            {"manifests_dir", sdbus::Variant(status.manifests_dir)},
            {"manifests_files", sdbus::Variant(status.manifests_files)},
            {"manifests_problems", sdbus::Variant(status.manifests_problems)},
        };
    });
}

std::vector<AgentObject::ModuleEntry> AgentObject::ListModules() {
    return answer([&] {
        std::vector<ModuleEntry> entries;
        for (const ModuleStatus& m : control_.modules())
            entries.emplace_back(m.name, std::string(module_state_name(m.state)), m.generation, m.path, m.sdk, m.message, m.stages);
        return entries;
    });
}

std::vector<sdbus::Struct<std::string, std::uint64_t>> AgentObject::GetStats() {
    return answer([&] {
        std::vector<sdbus::Struct<std::string, std::uint64_t>> out;
        for (const StatCounter& counter : control_.stats()) out.emplace_back(counter.name, counter.packets);
        return out;
    });
}

namespace {

// Keys as org.membrane.Agent1.xml documents them for GetFlows.
membrane::dbus::Dictionary flow_to_dictionary(const FlowEvent& e) {
    membrane::dbus::Dictionary out{
        {"seq", sdbus::Variant(e.seq)},
        {"time_ns", sdbus::Variant(e.time_ns)},
        {"type", sdbus::Variant(e.type)},
        {"verdict", sdbus::Variant(e.verdict)},
        {"drop_reason", sdbus::Variant(e.type == "drop" ? e.reason : std::string())},
        {"reason", sdbus::Variant(e.reason)},
        {"direction", sdbus::Variant(e.direction)},
        {"stage", sdbus::Variant(e.stage)},
        {"protocol", sdbus::Variant(e.protocol)},
        {"tcp_flags", sdbus::Variant(e.tcp_flags)},
        {"rule_id", sdbus::Variant(e.rule_id)},
        {"ifindex", sdbus::Variant(e.ifindex)},
    };
    const auto side = [&](const std::string& prefix, const std::string& ip, std::uint16_t port, std::uint32_t identity,
                          const FlowPeer& peer) {
        out[prefix + "ip"] = sdbus::Variant(ip);
        out[prefix + "port"] = sdbus::Variant(port);
        out[prefix + "identity"] = sdbus::Variant(identity);
        out[prefix + "namespace"] = sdbus::Variant(peer.namespace_);
        out[prefix + "pod"] = sdbus::Variant(peer.pod);
        out[prefix + "node"] = sdbus::Variant(peer.node);
        out[prefix + "labels"] = sdbus::Variant(peer.labels);
    };
    side("source_", e.source, e.source_port, e.source_identity, e.source_peer);
    side("destination_", e.destination, e.destination_port, e.destination_identity, e.destination_peer);
    return out;
}

}  // namespace

std::tuple<std::uint64_t, std::uint64_t, std::vector<membrane::dbus::Dictionary>> AgentObject::GetFlows(
    const std::uint64_t& after, const std::uint32_t& max) {
    return answer([&] {
        if (max == 0 || max > 10000) {
            throw ControlError(ControlErrorKind::InvalidArgument,
                               "max must be between 1 and 10000, not " + std::to_string(max));
        }
        const FlowPage page = control_.flows(after, max);
        std::vector<membrane::dbus::Dictionary> events;
        events.reserve(page.events.size());
        for (const auto& event : page.events) events.push_back(flow_to_dictionary(event));
        return std::tuple{page.last, page.lost, std::move(events)};
    });
}

namespace {

// Keys as org.membrane.Agent1.xml documents them for TracePacket.
membrane::dbus::Dictionary trace_to_dictionary(const PacketTrace& trace) {
    membrane::dbus::Dictionary out{
        {"source_port", sdbus::Variant(trace.source_port)},
        {"entry_program", sdbus::Variant(trace.entry_program)},
        {"entry_device", sdbus::Variant(trace.entry_device)},
    };
    const auto side = [&](const std::string& prefix, const TracePeer& peer) {
        out[prefix + "kind"] = sdbus::Variant(std::string(trace_peer_kind_name(peer.kind)));
        out[prefix + "ip"] = sdbus::Variant(peer.ip);
        out[prefix + "identity"] = sdbus::Variant(peer.identity);
        out[prefix + "namespace"] = sdbus::Variant(peer.namespace_);
        out[prefix + "pod"] = sdbus::Variant(peer.pod);
        out[prefix + "node"] = sdbus::Variant(peer.node);
    };
    side("source_", trace.source);
    side("destination_", trace.destination);
    return out;
}

membrane::dbus::Dictionary step_to_dictionary(const TraceStep& step) {
    const std::string stage_text = step.stage == MBR_EVENT_STAGE_ENTRY
                                       ? (step.program.empty() ? "end" : "entry")
                                       : stage_name(step.stage);
    return membrane::dbus::Dictionary{
        {"stage", sdbus::Variant(step.stage)},
        {"stage_name", sdbus::Variant(stage_text)},
        {"program", sdbus::Variant(step.program)},
        {"program_id", sdbus::Variant(step.program_id)},
        {"empty_slot", sdbus::Variant(step.empty_slot)},
        {"action", sdbus::Variant(std::string(action_name(step.action)))},
        {"retval", sdbus::Variant(step.retval)},
        {"counted", sdbus::Variant(step.counted ? stat_name(*step.counted) : std::string())},
        {"event_type", sdbus::Variant(step.event ? event_type_name(step.event->type) : std::string())},
        {"rule_id", sdbus::Variant(step.event ? step.event->rule_id : 0u)},
        {"src_identity", sdbus::Variant(step.context.src_identity)},
        {"dst_identity", sdbus::Variant(step.context.dst_identity)},
        {"direction", sdbus::Variant(direction_name(step.context.flags & 0xff))},
        {"ct_state", sdbus::Variant(ct_state_name((step.context.flags >> MBR_CTX_CT_SHIFT) & 0xff))},
    };
}

}  // namespace

std::tuple<membrane::dbus::Dictionary, std::vector<membrane::dbus::Dictionary>> AgentObject::TracePacket(
    const std::string& from, const std::string& to, const std::string& protocol, const std::uint16_t& port) {
    return answer([&] {
        const PacketTrace trace = control_.trace_packet({.from = from, .to = to, .protocol = protocol, .port = port});
        std::vector<membrane::dbus::Dictionary> steps;
        for (const auto& step : trace.steps) steps.push_back(step_to_dictionary(step));
        return std::tuple{trace_to_dictionary(trace), std::move(steps)};
    });
}

void AgentObject::LoadModule(const std::string& name) {
    answer([&] { control_.load_module(name); });
}

void AgentObject::UnloadModule(const std::string& name, const bool& force) {
    answer([&] { control_.unload_module(name, force); });
}

void AgentObject::ReloadModule(const std::string& name) {
    answer([&] { control_.reload_module(name); });
}

membrane::dbus::Dictionary AgentObject::AllocateAddress(const std::string& container_id, const std::string& ifname) {
    return answer([&] { return lease_to_dictionary(endpoints_.allocate_address(container_id, ifname)); });
}

void AgentObject::ReleaseAddress(const std::string& container_id, const std::string& ifname) {
    answer([&] { endpoints_.release_address(container_id, ifname); });
}

void AgentObject::CreateEndpoint(sdbus::Result<Dictionary>&& result, Dictionary request) {
    EndpointRequest parsed;
    try {
        access_.check(current_call());  // before the request is read, as for every method
        parsed = request_from_dictionary(request);
    } catch (...) {
        result.returnError(current_exception_as_dbus_error(dbus_error_name(control_error_name(ControlErrorKind::Failed))));
        return;
    }
    const membrane::Labels labels = parsed.labels;
    answer_after_identity(std::move(result), labels,
                          [this, parsed = std::move(parsed)] { return endpoints_.create_endpoint(parsed); });
}

void AgentObject::DeleteEndpoint(const std::string& container_id, const std::string& ifname) {
    answer([&] { endpoints_.delete_endpoint(container_id, ifname); });
}

membrane::dbus::Dictionary AgentObject::GetEndpoint(const std::uint64_t& id) {
    return answer([&] { return endpoint_reply(endpoints_.get_endpoint(id)); });
}

membrane::dbus::Dictionary AgentObject::FindEndpoint(const std::string& container_id, const std::string& ifname) {
    return answer([&] { return endpoint_reply(endpoints_.find_endpoint(container_id, ifname)); });
}

std::vector<membrane::dbus::Dictionary> AgentObject::ListEndpoints() {
    return answer([&] {
        std::vector<Dictionary> out;
        const bool full = access_.is_admin(current_call());
        for (const auto& endpoint : endpoints_.list_endpoints())
            out.push_back(endpoint_to_dictionary(full ? endpoint : redacted(endpoint)));
        return out;
    });
}

void AgentObject::SetEndpointLabels(sdbus::Result<Dictionary>&& result, std::uint64_t id,
                                    std::map<std::string, std::string> labels) {
    answer_after_identity(std::move(result), labels,
                          [this, id, labels] { return endpoints_.set_endpoint_labels(id, labels); });
}

std::vector<membrane::dbus::IdentityEntry> AgentObject::ListIdentities() {
    return answer([&] {
        std::vector<membrane::dbus::IdentityEntry> out;
        for (const auto& identity : endpoints_.list_identities()) out.push_back(membrane::dbus::identity_to_entry(identity));
        return out;
    });
}

std::vector<membrane::dbus::NodeEntry> AgentObject::ListNodes() {
    return answer([&] {
        std::vector<membrane::dbus::NodeEntry> out;
        for (const auto& node : endpoints_.list_nodes()) out.push_back(membrane::dbus::node_to_entry(node));
        return out;
    });
}

}  // namespace membrane::kernel
