#include "policy_trace.hpp"

#include <arpa/inet.h>

#include <iomanip>
#include <sstream>
#include <stdexcept>

namespace membrane::cli {
namespace {

std::string peer_text(const nlohmann::json& trace, const std::string& prefix) {
    const std::string pod = trace.value(prefix + "pod", "");
    const std::string ns = trace.value(prefix + "namespace", "");
    std::ostringstream out;
    out << (pod.empty() ? trace.value(prefix + "ip", "") : ns + "/" + pod);
    return out.str();
}

std::string peer_line(const nlohmann::json& trace, const std::string& prefix) {
    std::ostringstream out;
    out << std::left << std::setw(24) << peer_text(trace, prefix) << std::setw(16) << trace.value(prefix + "ip", "")
        << "identity " << std::setw(7) << trace.value(prefix + "identity", 0u) << trace.value(prefix + "kind", "");
    const std::string node = trace.value(prefix + "node", "");
    if (!node.empty()) out << " (" << node << ")";
    return out.str();
}

// "allowed by rule 3: CiliumNetworkPolicy x/allow (egress rule 0)", "denied: no rule allows (default deny)".
std::string side_text(const nlohmann::json& side) {
    if (!side.value("enforced", false)) return "allowed: no policy selects it in this direction";
    const bool allowed = side.value("verdict", "") == "allowed";
    const auto rule = side.value("rule_id", 0u);
    if (rule == 0) return allowed ? "allowed" : "denied: no rule allows it (default deny)";
    std::ostringstream out;
    out << (allowed ? "allowed by rule " : "denied by rule ") << rule;
    if (side.contains("policy")) {
        out << ": " << side.value("policy", "") << " (" << side.value("direction", "") << " rule "
            << side.value("index", 0u) << (side.value("deny", false) ? ", a deny rule" : "") << ")";
    }
    return out.str();
}

std::string step_text(const nlohmann::json& step) {
    std::ostringstream out;
    const std::string stage = step.value("stage_name", "");
    if (stage == "end") return "end of the pipeline: passed to the stack (pipeline_done)";
    out << stage << " " << (step.value("empty_slot", false) ? "(empty slot, fail-closed)" : step.value("program", ""))
        << ": " << step.value("action", "");
    if (!step.value("counted", "").empty()) out << " (" << step.value("counted", "") << ")";
    return out.str();
}

const nlohmann::json* find_stage(const nlohmann::json& steps, const std::string& stage) {
    for (const auto& step : steps)
        if (step.value("stage_name", "") == stage) return &step;
    return nullptr;
}

// The side the control plane judges, if this node judges it too.
const nlohmann::json* judged_here(const nlohmann::json& trace, const nlohmann::json& control, const char* direction) {
    const char* kind_key = std::string(direction) == "egress" ? "source_kind" : "destination_kind";
    if (trace.value(kind_key, "") != "pod-of-this-node" || control.is_null()) return nullptr;
    const auto found = control.find(direction);
    return found == control.end() || found->is_null() ? nullptr : &*found;
}

}  // namespace

TracePort parse_trace_port(const std::string& text) {
    if (text == "icmp") return TracePort{"icmp", 1, 0};
    const auto slash = text.find('/');
    const std::string number = text.substr(0, slash);
    const std::string protocol = slash == std::string::npos ? "tcp" : text.substr(slash + 1);
    if (protocol != "tcp" && protocol != "udp")
        throw std::invalid_argument("--dport: \"" + text + "\": the protocol is tcp or udp (or the whole is icmp)");
    std::size_t used = 0;
    unsigned long port = 0;
    try {
        port = std::stoul(number, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (number.empty() || used != number.size() || port == 0 || port > 65535)
        throw std::invalid_argument("--dport: \"" + text + "\": the port is a number from 1 to 65535 (80/tcp, 53/udp)");
    return TracePort{protocol, static_cast<std::uint8_t>(protocol == "tcp" ? 6 : 17), static_cast<std::uint16_t>(port)};
}

std::string cidr_trace_address(const std::string& text) {
    const auto slash = text.find('/');
    const std::string address = text.substr(0, slash);
    in_addr parsed{};
    if (inet_pton(AF_INET, address.c_str(), &parsed) != 1)
        throw std::invalid_argument("--to-cidr: \"" + text + "\" is not an IPv4 address or prefix");
    int length = 32;
    if (slash != std::string::npos) {
        const std::string bits = text.substr(slash + 1);
        std::size_t used = 0;
        try {
            length = std::stoi(bits, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (bits.empty() || used != bits.size() || length < 0 || length > 32)
            throw std::invalid_argument("--to-cidr: \"" + text + "\": the prefix length is 0 to 32");
    }
    std::uint32_t host = ntohl(parsed.s_addr);
    const std::uint32_t mask = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
    host &= mask;
    if (length <= 30) host += 1;  // not the network's own address
    in_addr chosen{htonl(host)};
    char out[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &chosen, out, sizeof(out));
    return out;
}

void check_trace_options(const TraceOptions& options) {
    if (options.from.empty() == options.from_labels.empty())
        throw std::invalid_argument("give --from (NAMESPACE/POD or an IPv4 address) or --from-labels (KEY=VALUE,...), one of them");
    if (!options.from_labels.empty() && options.from_labels.find('=') == std::string::npos)
        throw std::invalid_argument("--from-labels: \"" + options.from_labels + "\" is not KEY=VALUE,...");
    if (options.to.empty() == options.to_cidr.empty())
        throw std::invalid_argument("give --to (NAMESPACE/POD or an IPv4 address) or --to-cidr, one of them");
    if (!options.to_cidr.empty()) cidr_trace_address(options.to_cidr);
    parse_trace_port(options.dport);
}

std::vector<std::string> trace_disagreements(const nlohmann::json& datapath, const nlohmann::json& control) {
    std::vector<std::string> out;
    const auto& trace = datapath.at("trace");
    const auto& steps = datapath.at("steps");
    if (steps.empty()) return {"the datapath ran no program"};
    const nlohmann::json& last = steps.back();
    const bool dropped = last.value("action", "") == "dropped";
    if (control.is_null()) {
        // No policy-l3l4: nothing to compare with, but its stages may be
        // fail-closed (it ran here once): then their empty slots drop, as they must.
        const std::string stage = last.value("stage_name", "");
        if (dropped && !(last.value("counted", "") == "drop_stage_missing" &&
                         (stage == "egress-policy" || stage == "ingress-policy"))) {
            out.push_back("no policy module judges the packet, but the datapath drops it at " + step_text(last));
        }
        return out;
    }
    // Egress is judged before ingress: the first denial here is where the packet must end.
    struct Side {
        const char* direction;
        const char* stage;
        const nlohmann::json* verdict;
    };
    const Side sides[] = {{"egress", "egress-policy", judged_here(trace, control, "egress")},
                          {"ingress", "ingress-policy", judged_here(trace, control, "ingress")}};
    for (const auto& side : sides) {
        if (!side.verdict) continue;
        const auto rule = side.verdict->value("rule_id", 0u);
        if (side.verdict->value("verdict", "") == "denied") {
            if (!dropped || last.value("stage_name", "") != side.stage || last.value("counted", "") != "drop_policy") {
                out.push_back(std::string("the control plane denies at ") + side.direction + " (" +
                              side_text(*side.verdict) + "), but in the datapath the packet ends at " + step_text(last));
            } else if (last.value("rule_id", 0u) != rule) {
                out.push_back(std::string("both deny at ") + side.direction + ", but by rule " +
                              std::to_string(last.value("rule_id", 0u)) + " in the datapath and rule " +
                              std::to_string(rule) + " in the control plane");
            }
            return out;
        }
        // Allowed: its stage must let the packet on, reporting the same rule if enforced.
        const nlohmann::json* step = find_stage(steps, side.stage);
        const bool enforced = side.verdict->value("enforced", false);
        if (!step) {
            if (enforced && !dropped) {
                out.push_back(std::string("the control plane enforces ") + side.direction +
                              " here, but no program ran in stage " + side.stage);
            }
            continue;  // a drop before the stage is reported below
        }
        if (step->value("action", "") == "dropped") break;  // reported below
        const bool reported = step->value("event_type", "") == "verdict";
        if (enforced && (!reported || step->value("rule_id", 0u) != rule)) {
            out.push_back(std::string("the control plane allows ") + side.direction + " by rule " +
                          std::to_string(rule) + ", the datapath " +
                          (reported ? "by rule " + std::to_string(step->value("rule_id", 0u)) : "without a rule"));
        } else if (!enforced && reported) {
            out.push_back(std::string("the control plane enforces no ") + side.direction +
                          " policy here, but the datapath allowed by rule " + std::to_string(step->value("rule_id", 0u)));
        }
    }
    if (dropped) out.push_back("the control plane lets the packet through here, but the datapath drops it at " + step_text(last));
    return out;
}

int run_policy_trace(AgentClient& agent, const TraceOptions& options, OutputFormat format, std::ostream& out) {
    const TracePort port = parse_trace_port(options.dport);
    const std::string to = options.to_cidr.empty() ? options.to : cidr_trace_address(options.to_cidr);
    // The datapath first: it resolves both sides as the agent's model has them.
    const std::string from = options.from_labels.empty() ? options.from : options.from_labels;
    const nlohmann::json datapath = agent.trace_packet(from, to, port.protocol, port.port);
    const auto& trace = datapath.at("trace");
    nlohmann::json control = nullptr;
    std::string control_note;
    try {
        const nlohmann::json request{
            {"source", {{"ip", trace.value("source_ip", "")}, {"identity", trace.value("source_identity", 0u)}}},
            {"destination", {{"ip", trace.value("destination_ip", "")}, {"identity", trace.value("destination_identity", 0u)}}},
            {"protocol", port.number},
            {"port", port.port}};
        control = agent.policy_call("Trace", request.dump(), "policy trace");
    } catch (const ModuleNotRunning& e) {
        control_note = e.message() + ". Nothing to compare with: no policy is enforced, except that stages it "
                                     "declared fail-closed (if it ever ran here) drop every packet while it is away";
    }
    const auto disagreements = trace_disagreements(datapath, control);

    if (format == OutputFormat::Json) {
        out << nlohmann::json{{"trace", trace},
                              {"steps", datapath.at("steps")},
                              {"control_plane", control},
                              {"agree", disagreements.empty()},
                              {"disagreements", disagreements}}
                   .dump()
            << '\n';
        return disagreements.empty() ? 0 : kExitDisagreement;
    }
    std::string what = port.protocol == "icmp" ? "ICMP echo request" : port.protocol == "tcp" ? "TCP SYN" : "UDP";
    out << "policy trace: " << what << " " << trace.value("source_ip", "") << ":" << trace.value("source_port", 0u)
        << " -> " << trace.value("destination_ip", "");
    if (port.port) out << ":" << port.port;
    out << " (a new connection)\n";
    out << "  from  " << peer_line(trace, "source_") << "\n";
    out << "  to    " << peer_line(trace, "destination_") << "\n\n";

    out << "Control plane (policy-l3l4";
    if (!control.is_null()) out << ", enforcement " << control.value("enforcement", "");
    out << ")\n";
    if (control.is_null()) out << "  " << control_note << "\n";
    for (const char* direction : {"egress", "ingress"}) {
        if (control.is_null() || control[direction].is_null()) continue;
        const std::string prefix = std::string(direction) == "egress" ? "source_" : "destination_";
        out << "  " << std::left << std::setw(8) << direction << "of " << std::setw(24) << peer_text(trace, prefix)
            << side_text(control[direction]);
        if (trace.value(prefix + "kind", "") != "pod-of-this-node")
            out << "   [judged on " << trace.value(prefix + "node", "its node") << "]";
        out << "\n";
    }

    out << "\nDatapath of this node (its loaded programs, run with BPF_PROG_TEST_RUN: nothing counted, tracked or "
           "reported)\n";
    out << "  arrives at " << trace.value("entry_program", "") << " on " << trace.value("entry_device", "") << "\n";
    for (const auto& step : datapath.at("steps")) {
        const std::string stage = step.value("stage_name", "");
        std::ostringstream left;
        if (stage == "entry" || stage == "end") left << stage;
        else left << step.value("stage", 0u) << " " << stage;
        const std::string program = step.value("empty_slot", false) ? "(empty, fail-closed)" : step.value("program", "");
        std::ostringstream line;
        line << "  " << std::left << std::setw(18) << left.str() << std::setw(36) << program << " " << std::setw(12)
             << step.value("action", "");
        std::string detail = step.value("counted", "");
        if (step.value("event_type", "") == "verdict") detail += (detail.empty() ? "" : ", ") + std::string("allowed by rule ") + std::to_string(step.value("rule_id", 0u));
        if (step.value("counted", "") == "drop_policy")
            detail += step.value("rule_id", 0u) ? " by rule " + std::to_string(step.value("rule_id", 0u)) : " (default deny)";
        if (stage == "entry") {
            detail += (detail.empty() ? "" : ", ") + std::string("src ") + std::to_string(step.value("src_identity", 0u)) +
                      " dst " + std::to_string(step.value("dst_identity", 0u)) + ", ct " + step.value("ct_state", "");
        }
        std::string text = line.str() + detail;
        text.erase(text.find_last_not_of(' ') + 1);
        out << text << "\n";
    }
    const auto& last = datapath.at("steps").back();
    const std::string counted = last.value("counted", "");
    if (counted == "to_overlay" || counted == "fib_forwarded") {
        out << "  => leaves this node (" << counted << ")";
        if (trace.value("destination_kind", "") == "pod-of-another-node")
            out << "; " << peer_text(trace, "destination_") << "'s ingress policy is judged on "
                << trace.value("destination_node", "its node") << ": run the trace there too";
        out << "\n";
    } else if (counted == "delivered_local") {
        out << "  => delivered to " << peer_text(trace, "destination_") << "\n";
    }

    out << "\n";
    if (disagreements.empty()) {
        out << "Agreement: the datapath does what the control plane says"
            << (last.value("action", "") == "dropped" ? " (denied)." : " (allowed on this node).") << "\n";
        return 0;
    }
    out << "DISAGREEMENT between the control plane and the datapath:\n";
    for (const auto& line : disagreements) out << "  - " << line << "\n";
    return kExitDisagreement;
}

}  // namespace membrane::cli
