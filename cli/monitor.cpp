#include "monitor.hpp"

#include <chrono>
#include <cmath>
#include <ctime>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <thread>

namespace membrane::cli {
namespace {

constexpr std::uint32_t kPage = 1000;
constexpr auto kPoll = std::chrono::milliseconds(100);

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "namespace/pod" of one side; "" when it is not a pod.
std::string pod_of(const nlohmann::json& side) {
    const std::string pod = side.value("pod_name", "");
    if (pod.empty()) return "";
    return side.value("namespace", "") + "/" + pod;
}

bool pod_matches(const nlohmann::json& side, const std::string& wanted) {
    if (wanted.empty()) return true;
    return wanted.find('/') == std::string::npos ? side.value("pod_name", "") == wanted : pod_of(side) == wanted;
}

// The labels worth showing: not the namespace (it is shown) nor the pod's name.
std::string labels_text(const nlohmann::json& side) {
    std::string out;
    for (const auto& label : side.value("labels", nlohmann::json::array())) {
        const std::string text = label.get<std::string>();
        if (text.rfind("k8s:io.kubernetes.pod.", 0) == 0) continue;
        out += (out.empty() ? "" : ",") + text;
    }
    return out;
}

std::string endpoint_text(const nlohmann::json& flow, const char* side, const char* ip_key, const char* port_key) {
    const nlohmann::json& who = flow.at(side);
    std::string out;
    if (const std::string pod = pod_of(who); !pod.empty()) {
        out = pod;
        if (const std::string node = who.value("node_name", ""); !node.empty()) out += "@" + node;
    } else {
        out = "identity " + std::to_string(who.value("identity", 0u));
    }
    if (const std::string labels = labels_text(who); !labels.empty()) out += " (" + labels + ")";
    if (flow.contains("IP")) {
        out += " " + flow["IP"].value(ip_key, "");
        for (const auto& [protocol, l4] : flow["l4"].items()) {
            if (protocol == "TCP" || protocol == "UDP" || protocol == "SCTP") {
                out += ":" + std::to_string(l4.value(port_key, 0));
            }
        }
    }
    return out;
}

std::string time_text(std::int64_t ns) {
    const std::time_t seconds = static_cast<std::time_t>(ns / 1'000'000'000);
    std::tm local{};
    localtime_r(&seconds, &local);
    char buffer[32];
    std::strftime(buffer, sizeof(buffer), "%H:%M:%S", &local);
    char millis[8];
    std::snprintf(millis, sizeof(millis), ".%03lld", static_cast<long long>((ns / 1'000'000) % 1000));
    return std::string(buffer) + millis;
}

// What decided a policy event: the rule by its id, or the policies whose
// default deny it is (those selecting the pod the stage judged).
std::string policy_text(const nlohmann::json& flow, const nlohmann::json& status) {
    const std::uint32_t rule = flow.value("rule_id", 0u);
    const bool policy_event = flow.value("type", "") == "verdict" || flow.value("drop_reason", "") == "drop_policy";
    if (!policy_event) return "";
    if (rule != 0) {
        for (const auto& origin : status.value("rules", nlohmann::json::array())) {
            if (origin.value("rule_id", 0u) != rule) continue;
            return "rule " + std::to_string(rule) + ": " + origin.value("policy", "") + " " +
                   origin.value("direction", "") + "[" + std::to_string(origin.value("index", 0)) + "]" +
                   (origin.value("deny", false) ? " (deny)" : "");
        }
        return "rule " + std::to_string(rule);
    }
    const bool egress = flow.value("stage", "") == "egress-policy";
    const std::string judged = flow.contains("IP") ? flow["IP"].value(egress ? "source" : "destination", "") : "";
    std::string policies;
    for (const auto& endpoint : status.value("endpoints", nlohmann::json::array())) {
        if (endpoint.value("ipv4", "") != judged) continue;
        for (const auto& name : endpoint.value("policies", nlohmann::json::array())) {
            policies += (policies.empty() ? "" : ", ") + name.get<std::string>();
        }
    }
    return "no rule allows; default deny" + (policies.empty() ? std::string() : " of " + policies);
}

}  // namespace

double parse_duration(const std::string& text) {
    std::size_t used = 0;
    double value = 0;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string unit = text.substr(used);
    const double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
    // At most a year: the result becomes nanoseconds in 64 bits.
    if (used == 0 || scale < 0 || !std::isfinite(value) || value < 0 || value * scale > 366.0 * 86400) {
        throw std::invalid_argument("'" + text + "' is not a duration (e.g. 30s, 5m, 2h; at most a year)");
    }
    return value * scale;
}

void check_monitor_options(const MonitorOptions& options) {
    if (!options.type.empty() && options.type != "drop" && options.type != "verdict" && options.type != "trace") {
        throw std::invalid_argument("--type must be drop, verdict or trace, not '" + options.type + "'");
    }
    if (!options.verdict.empty() && options.verdict != "allowed" && options.verdict != "dropped" &&
        options.verdict != "denied") {
        throw std::invalid_argument("--verdict must be allowed or dropped (denied), not '" + options.verdict + "'");
    }
    if (!options.since.empty()) parse_duration(options.since);
    if (!std::isfinite(options.timeout) || options.timeout < 0 || options.timeout > 366.0 * 86400) {
        throw std::invalid_argument("--timeout must be a number of seconds, at most a year");
    }
}

bool flow_matches(const nlohmann::json& flow, const MonitorOptions& options) {
    if (!options.type.empty() && flow.value("type", "") != options.type) return false;
    if (!options.verdict.empty()) {
        const std::string verdict = flow.value("verdict", "");
        const bool allowed = verdict == "allowed";
        if ((options.verdict == "allowed") != allowed) return false;
    }
    if (!pod_matches(flow.at("source"), options.from_pod) || !pod_matches(flow.at("destination"), options.to_pod)) {
        return false;
    }
    if (!options.namespace_.empty() && flow.at("source").value("namespace", "") != options.namespace_ &&
        flow.at("destination").value("namespace", "") != options.namespace_) {
        return false;
    }
    if (options.port != 0) {
        bool found = false;
        const nlohmann::json layers = flow.value("l4", nlohmann::json::object());
        for (const auto& [protocol, l4] : layers.items()) {
            found = found || l4.value("source_port", 0) == options.port || l4.value("destination_port", 0) == options.port;
        }
        if (!found) return false;
    }
    return true;
}

std::string flow_line(const nlohmann::json& flow, const nlohmann::json& policy_status) {
    std::string line = time_text(flow.value("time_ns", std::int64_t{0})) + " " +
                       endpoint_text(flow, "source", "source", "source_port") + " -> " +
                       endpoint_text(flow, "destination", "destination", "destination_port");
    const nlohmann::json layers = flow.value("l4", nlohmann::json::object());
    for (const auto& [protocol, l4] : layers.items()) {
        line += " " + protocol;
        if (const std::string flags = l4.value("flags", ""); !flags.empty()) line += " " + flags;
    }
    std::string verdict = flow.value("verdict", "");
    for (auto& c : verdict) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    line += "  " + verdict;
    if (const std::string reason = flow.value("drop_reason", ""); !reason.empty()) line += "  " + reason;
    if (const std::string point = flow.value("trace_observation_point", ""); !point.empty()) line += "  " + point;
    if (const std::string policy = policy_text(flow, policy_status); !policy.empty()) line += "  (" + policy + ")";
    line += "  [" + flow.value("stage", "") + "]";
    return line;
}

int run_monitor(AgentClient& agent, const MonitorOptions& options, OutputFormat format, std::ostream& out) {
    check_monitor_options(options);
    const std::int64_t oldest_ns =
        options.since.empty() ? 0 : now_ns() - static_cast<std::int64_t>(parse_duration(options.since) * 1e9);
    // Without --since: only what comes from now on.
    const nlohmann::json first = agent.flows(options.since.empty() ? std::numeric_limits<std::uint64_t>::max() : 0, 1);
    std::uint64_t cursor = options.since.empty() ? first.value("last", std::uint64_t{0}) : 0;
    // --timeout counts from here: the history is always read once.
    const auto started = std::chrono::steady_clock::now();
    const auto timed_out = [&] {
        return options.timeout > 0 &&
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >= options.timeout;
    };
    bool read_once = false;
    std::uint64_t lost = first.value("lost", std::uint64_t{0});
    if (lost != 0) {
        std::cerr << "membranectl monitor: the datapath has lost " << lost
                  << " events so far (its ring buffer was full); see [monitor] sampling in the README\n";
    }
    nlohmann::json policy_status = nlohmann::json::object();
    std::chrono::steady_clock::time_point policy_read{};  // never
    std::uint64_t shown = 0;
    while (!read_once || !timed_out()) {
        read_once = true;
        const nlohmann::json page = agent.flows(cursor, kPage);
        if (const auto now_lost = page.value("lost", std::uint64_t{0}); now_lost > lost) {
            std::cerr << "membranectl monitor: " << now_lost - lost
                      << " events lost in the datapath (the ring buffer was full)\n";
            lost = now_lost;
        }
        const auto& events = page.at("events");
        if (page.value("last", std::uint64_t{0}) < cursor) {
            // Numbers start again with the agent: read its history from the start.
            std::cerr << "membranectl monitor: the agent restarted; reading on from its first event\n";
            cursor = 0;
            continue;
        }
        if (!events.empty() && cursor != 0 && events.front().value("seq", std::uint64_t{0}) > cursor + 1) {
            std::cerr << "membranectl monitor: " << events.front().value("seq", std::uint64_t{0}) - cursor - 1
                      << " events left the agent's history before they were read\n";
        }
        for (const auto& flow : events) {
            cursor = flow.value("seq", cursor);
            if (flow.value("time_ns", std::int64_t{0}) < oldest_ns || !flow_matches(flow, options)) continue;
            if (format == OutputFormat::Json) {
                out << flow.dump() << '\n';
            } else {
                // Rule names come from policy-l3l4's Status (a node without it
                // shows the rule ids alone), read again at most once a second:
                // rule ids are renumbered when policies change.
                const auto now = std::chrono::steady_clock::now();
                if (!policy_text(flow, nlohmann::json::object()).empty() && now - policy_read > std::chrono::seconds(1)) {
                    policy_read = now;
                    try {
                        policy_status = agent.policy_status("monitor");
                    } catch (const std::exception&) {
                        policy_status = nlohmann::json::object();
                    }
                }
                out << flow_line(flow, policy_status) << '\n';
            }
            out.flush();
            if (options.count != 0 && ++shown >= options.count) return 0;
        }
        if (events.size() < kPage) std::this_thread::sleep_for(kPoll);
    }
    return 0;
}

}  // namespace membrane::cli
