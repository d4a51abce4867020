// The agent's side of `membranectl policy trace`: who the packet is from and
// for (the model), where it would arrive, and the run through the loaded
// datapath (kernel/trace).
#include <random>

#include "agent/agent.hpp"
#include "bpf/pipeline_slots.hpp"
#include "model/link_info.hpp"
#include "trace/trace_frame.hpp"

namespace membrane::kernel {
namespace {

// A source that is no pod of this node has no MAC of its own here.
constexpr MacAddress kOutsideMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
// Source ports drawn before a trace settles for one a connection has.
constexpr int kPortAttempts = 8;

std::uint8_t trace_protocol(const TraceRequest& request) {
    if (request.protocol == "tcp" || request.protocol == "udp") {
        if (request.port == 0) {
            throw ControlError(ControlErrorKind::InvalidArgument,
                               "a " + request.protocol + " trace needs a destination port (1-65535)");
        }
        return request.protocol == "tcp" ? 6 : 17;
    }
    if (request.protocol == "icmp") {
        if (request.port != 0) {
            throw ControlError(ControlErrorKind::InvalidArgument, "an icmp trace (an echo request) has no port");
        }
        return 1;
    }
    throw ControlError(ControlErrorKind::InvalidArgument,
                       "protocol must be tcp, udp or icmp, not \"" + request.protocol + "\"");
}

std::uint32_t address_of(const std::string& ip) {
    const auto parsed = parse_ipv4(ip);
    if (!parsed) throw ControlError(ControlErrorKind::Failed, "the model holds a bad address \"" + ip + "\"");
    return *parsed;
}

}  // namespace

void Agent::open_tracer() {
    tracer_ = std::make_unique<DatapathTracer>(registry_->core_map_fd(MBR_MAP_PIPELINE),
                                               registry_->core_map_fd(MBR_MAP_STAGE_VERDICTS),
                                               registry_->core_map_fd(MBR_MAP_TRACE));
}

// A stage built against SDK 1.0 to 1.5 knows no trace runs: it would tail-call,
// count, report and track for real inside BPF_PROG_TEST_RUN.
void Agent::refuse_stages_without_trace_runs() const {
    const auto modules = host_->list();
    for (const auto& slot : registry_->slots()) {
        for (const auto& module : modules) {
            if (module.name != slot.module) continue;
            if (module.sdk_major == 1 && module.sdk_minor < 6) {
                throw ControlError(ControlErrorKind::Failed,
                                   "stage " + describe_stage(slot.stage) + " is held by module " + module.name +
                                       ", built against SDK " + module.sdk +
                                       ", which knows no trace runs (SDK 1.6): its program would count and track "
                                       "the trace packet for real. Rebuild it against SDK 1.6 to trace through it");
            }
        }
    }
}

// Where a packet from `source` meets this node's datapath first.
TraceEntry Agent::trace_entry(const TracePeer& source) const {
    const auto device_with = [&](std::string_view program) -> std::optional<std::string> {
        for (const auto& attachment : registry_->attachments())
            if (attachment.program == program && interface_index(attachment.ifname) != 0) return attachment.ifname;
        return std::nullopt;
    };
    TraceEntry entry;
    std::optional<std::string> device;
    switch (source.kind) {
        case TracePeer::Kind::this_node:
            throw ControlError(ControlErrorKind::InvalidArgument,
                               "what this node's own stack sends meets no Membrane program (the node's own traffic "
                               "is not judged): nothing to trace from " + source.ip);
        case TracePeer::Kind::local_pod:
            entry.program = MBR_ENTRY_FROM_ENDPOINT;
            device = source.endpoint->host_ifname;
            break;
        case TracePeer::Kind::remote_pod:
        case TracePeer::Kind::other_node:
            // Another node's packets come through the overlay when a routing
            // module has one, with the tunnel key its sender would write.
            if ((device = device_with(MBR_ENTRY_FROM_OVERLAY))) {
                entry.program = MBR_ENTRY_FROM_OVERLAY;
                entry.vni = source.kind == TracePeer::Kind::remote_pod ? source.identity : std::uint32_t{MBR_IDENTITY_HOST};
                for (const auto& node : nodes_->nodes())
                    if (node.name == source.node) entry.outer_source = address_of(node.ip);
                break;
            }
            [[fallthrough]];
        case TracePeer::Kind::world:
            entry.program = MBR_ENTRY_FROM_NETDEV;
            device = device_with(MBR_ENTRY_FROM_NETDEV);
            if (!device) {
                throw ControlError(ControlErrorKind::InvalidArgument,
                                   "no device of this node has the from-netdev entry program ([agent] devices): "
                                   "a packet from " + source.ip + " would meet no Membrane program here");
            }
            break;
    }
    entry.device = *device;
    entry.ifindex = interface_index(*device);
    if (entry.ifindex == 0) {
        throw ControlError(ControlErrorKind::Failed, "the device " + *device + " a packet from " + source.ip +
                                                         " would arrive on is gone");
    }
    entry.program_fd = registry_->core_program_fd(entry.program);
    return entry;
}

PacketTrace Agent::trace_packet(const TraceRequest& request) const {
    if (!tracer_) throw ControlError(ControlErrorKind::Failed, "the datapath tracer is not running yet");
    const std::uint8_t protocol = trace_protocol(request);
    TracePeerModel model{.endpoints = endpoints_->list_endpoints(),
                         .remote_endpoints = cluster_endpoints_ ? cluster_endpoints_->remote_endpoints()
                                                                : std::vector<membrane::RemoteEndpointInfo>{},
                         .nodes = nodes_->nodes(),
                         .identities = identities_->list()};
    PacketTrace trace;
    try {
        trace.source = resolve_trace_peer(request.from, model);
        trace.destination = resolve_trace_peer(request.to, model);
    } catch (const std::invalid_argument& e) {
        throw ControlError(ControlErrorKind::InvalidArgument, e.what());
    }
    try {
        refuse_stages_without_trace_runs();
        const TraceEntry entry = trace_entry(trace.source);
        TraceFrameSpec spec{.source_mac = kOutsideMac,
                            .source_ip = address_of(trace.source.ip),
                            .destination_ip = address_of(trace.destination.ip),
                            .protocol = protocol,
                            .destination_port = request.port};
        if (trace.source.endpoint) {
            if (const auto mac = parse_mac(trace.source.endpoint->mac)) spec.source_mac = *mac;
        }
        if (const auto mac = interface_mac(entry.device)) spec.destination_mac = *mac;
        trace.entry_device = entry.device;
        trace.entry_program = entry.program;
        // A port of the ephemeral range (Linux's default) that no tracked
        // connection has, so the packet is a new connection's first: drawn
        // again while the entry program finds it tracked.
        std::random_device random;
        for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
            trace.source_port = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(32768, 60999)(random));
            spec.source_port = trace.source_port;
            trace.steps = tracer_->run(entry, build_trace_frame(spec));
            const auto ct_state = (trace.steps.front().context.flags >> MBR_CTX_CT_SHIFT) & 0xff;
            if (ct_state != MBR_CT_ESTABLISHED && ct_state != MBR_CT_REPLY && ct_state != MBR_CT_RELATED) break;
        }
        // The registry knows each slot's program by its whole name, and its module.
        const auto slots = registry_->slots();
        for (auto& step : trace.steps) {
            for (const auto& slot : slots) {
                if (slot.stage == step.stage && slot.program_id == step.program_id && !slot.program.empty())
                    step.program = slot.module.empty() ? slot.program : slot.module + "/" + slot.program;
            }
        }
        trace.steps.front().program = entry.program;
    } catch (const BpfError& e) {
        throw ControlError(ControlErrorKind::Failed, e.what());
    }
    return trace;
}

}  // namespace membrane::kernel
