#include "monitor/flow_event.hpp"

#include <arpa/inet.h>

#include "config/ipv4.hpp"
#include "membrane/stage_names.hpp"
#include "membrane/stat_names.hpp"

namespace membrane::kernel {

std::string event_stage_name(std::uint32_t stage) {
    return stage == MBR_EVENT_STAGE_ENTRY ? "entry" : stage_name(stage);
}

std::string tcp_flags_text(std::uint8_t flags) {
    static constexpr std::pair<std::uint8_t, const char*> kNames[] = {
        {0x02, "SYN"}, {0x10, "ACK"}, {0x01, "FIN"}, {0x04, "RST"}, {0x08, "PSH"}, {0x20, "URG"}};
    std::string out;
    for (const auto& [bit, name] : kNames) {
        if (!(flags & bit)) continue;
        if (!out.empty()) out += ' ';
        out += name;
    }
    return out;
}

namespace {

std::string protocol_name(std::uint8_t protocol) {
    switch (protocol) {
        case 0: return "";
        case 1: return "ICMP";
        case 6: return "TCP";
        case 17: return "UDP";
        case 132: return "SCTP";
        default: return "proto-" + std::to_string(protocol);
    }
}

}  // namespace

FlowEvent decode_flow_event(const mbr_event& raw, std::uint64_t seq, std::int64_t monotonic_to_wall) {
    FlowEvent event;
    event.seq = seq;
    event.time_ns = static_cast<std::int64_t>(raw.timestamp_ns) + monotonic_to_wall;
    switch (raw.type) {
        case MBR_EVENT_DROP:
            event.type = "drop";
            event.reason = stat_name(raw.reason);
            event.verdict = "dropped";
            break;
        case MBR_EVENT_VERDICT:
            event.type = "verdict";
            event.verdict = raw.verdict ? "allowed" : "denied";
            break;
        case MBR_EVENT_TRACE:
            // A trace point: where the packet left the pipeline (membrane_report_forward).
            event.type = "trace";
            event.reason = stat_name(raw.reason);
            event.verdict = "forwarded";
            break;
        default:
            event.type = event_type_name(raw.type);
            break;
    }
    event.direction = direction_name(raw.direction);
    event.stage = event_stage_name(raw.stage);
    event.protocol = protocol_name(raw.protocol);
    if (raw.protocol == 6) event.tcp_flags = tcp_flags_text(raw.tcp_flags);
    if (raw.protocol != 0) {
        event.source = format_ipv4(ntohl(raw.saddr));
        event.destination = format_ipv4(ntohl(raw.daddr));
        event.source_port = ntohs(raw.sport);
        event.destination_port = ntohs(raw.dport);
    }
    event.source_identity = raw.src_identity;
    event.destination_identity = raw.dst_identity;
    event.rule_id = raw.rule_id;
    event.ifindex = raw.ifindex;
    return event;
}

}  // namespace membrane::kernel
