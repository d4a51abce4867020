#include "render.hpp"

#include <algorithm>
#include <cstdint>
#include <cctype>
#include <ctime>
#include <set>

namespace membrane::cli {
namespace {

std::string text_of(const nlohmann::json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) joined += (joined.empty() ? "" : ",") + text_of(item);
        return joined.empty() ? "-" : joined;
    }
    if (value.is_null()) return "-";
    return value.dump();
}

std::string duration_of(std::uint64_t seconds) {
    const auto days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60;
    std::string out;
    if (days) out += std::to_string(days) + "d";
    if (days || hours) out += std::to_string(hours) + "h";
    if (days || hours || minutes) out += std::to_string(minutes) + "m";
    return out + std::to_string(secs) + "s";
}

// "app=web,k8s:namespace=default"; a label without value shows as its key.
std::string labels_of(const nlohmann::json& labels) {
    std::string joined;
    for (const auto& [key, value] : labels.items()) {
        joined += (joined.empty() ? "" : ",") + key;
        if (!value.get<std::string>().empty()) joined += "=" + value.get<std::string>();
    }
    return joined.empty() ? "-" : joined;
}

// "0.8 s", "12.0 s"
std::string seconds_of(std::int64_t milliseconds) {
    return std::to_string(milliseconds / 1000) + "." + std::to_string(milliseconds % 1000 / 100) + " s";
}

std::string yes_no(const nlohmann::json& flag) { return flag.get<bool>() ? "yes" : "no"; }

constexpr std::size_t kShortContainerId = 12;  // as docker ps and crictl show it

// "1 rule", "3 rules"
std::string count_of(const std::string& text, const std::string& one, const std::string& many) {
    return text + " " + (text == "1" ? one : many);
}

// A direction of policy-l3l4's endpoint entry: "enforced" or "-".
std::string enforced(const nlohmann::json& endpoint, const char* key) {
    return endpoint.value(key, false) ? "enforced" : "-";
}

// Policy refs hold a space ("NetworkPolicy shop/web"): joined with ", ".
std::string refs_of(const nlohmann::json& refs) {
    std::string joined;
    for (const auto& ref : refs) joined += (joined.empty() ? "" : ", ") + text_of(ref);
    return joined.empty() ? "-" : joined;
}

// A key's value as text, "-" when it is missing.
std::string field_of(const nlohmann::json& object, const char* key) {
    const auto found = object.find(key);
    return found == object.end() ? "-" : text_of(*found);
}


// Does `name` name the policy `ref` ("KIND NAMESPACE/NAME", or "KIND NAME"
// cluster-wide)? The whole ref, "NAMESPACE/NAME" or "NAME".
bool names_policy(const std::string& ref, const std::string& name) {
    return !name.empty() && (ref == name || ref.ends_with(" " + name) || ref.ends_with("/" + name));
}

constexpr const char* kL7Note = "L7 rules not enforced yet: only the L4 part is";

// endpoint_policy's "module": where the state comes from.
constexpr const char* kPolicyRunning = "running";
constexpr const char* kPolicyNotRunning = "not running";
constexpr const char* kPolicyUnknown = "unknown";

// The rows print_endpoint adds for an endpoint_policy.
std::vector<std::vector<std::string>> policy_rows(const nlohmann::json& policy) {
    const std::string module = policy.value("module", "");
    // An empty stage of a module that ran drops (fail-closed); the agent does not say which case this is.
    if (module == kPolicyNotRunning) {
        return {{"Policy:", "policy-l3l4 is not running (never loaded: nothing is enforced; unloaded or quarantined: "
                            "its stages drop every packet)"}};
    }
    if (module != kPolicyRunning) return {{"Policy:", "unknown: " + policy.value("message", "")}};
    std::vector<std::vector<std::string>> rows{{"Policy:", "policy-l3l4, enforcement " + field_of(policy, "enforcement")}};
    if (policy.contains("ingress_enforced")) {
        auto direction = [&](const char* key) { return policy.value(key, false) ? "enforced" : "not enforced"; };
        const auto& selecting = list_in(policy, "policies");
        rows.push_back({"  Ingress:", direction("ingress_enforced")});
        rows.push_back({"  Egress:", direction("egress_enforced")});
        rows.push_back({"  Selected by:", selecting.empty() ? "no policy" : refs_of(selecting)});
        rows.push_back({"  Rules:", field_of(policy, "rules") + " in the datapath"});
    } else {
        rows.push_back({"", policy.value("message", "")});
    }
    const std::string error = policy.value("datapath_error", "");
    if (!error.empty()) {
        // policy-l3l4's recompute(): on a failed write it closes what a policy selects.
        rows.push_back({"  Error:", "the datapath does not hold every rule (" + error +
                                        "): the maps may not match the policies; the endpoints a policy selects are "
                                        "closed both ways (fail-closed) until a change of policy applies"});
    }
    return rows;
}

}  // namespace

const nlohmann::json& list_in(const nlohmann::json& object, const char* key) {
    static const nlohmann::json empty = nlohmann::json::array();
    const auto found = object.find(key);
    return found != object.end() && found->is_array() ? *found : empty;
}

void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths(headers.size(), 0);
    auto widen = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    };
    if (!headers.empty() && !headers[0].empty()) widen(headers);
    for (const auto& row : rows) widen(row);
    auto print_row = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            out << row[i];
            if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 2, ' ');
        }
        out << '\n';
    };
    if (!headers.empty() && !headers[0].empty()) print_row(headers);
    for (const auto& row : rows) print_row(row);
}

// "off", "connected to URL (revision N)", "disconnected from URL: error".
std::string kvstore_summary(const nlohmann::json& status) {
    auto text = [&](const char* key) {
        return status.contains(key) && status[key].is_string() ? status[key].get<std::string>() : std::string();
    };
    const std::string state = text("kvstore_state");
    if (state.empty() || state == "off") return "off (state on this node only)";
    std::string out = state == "connected" ? "connected to " + text("kvstore_endpoint")
                                           : state + " (" + text("kvstore_endpoint") + ")";
    if (status.contains("kvstore_revision") && status["kvstore_revision"].is_number()) {
        out += ", revision " + std::to_string(status["kvstore_revision"].get<std::int64_t>());
    }
    if (state != "connected" && !text("kvstore_error").empty()) out += ": " + text("kvstore_error");
    return out;
}

// "off", "/etc/membrane/manifests: 3 files applied", then one line per problem.
static std::vector<std::vector<std::string>> manifests_rows(const nlohmann::json& status) {
    const std::string folder =
        status.contains("manifests_dir") && status["manifests_dir"].is_string() ? status["manifests_dir"].get<std::string>() : "";
    if (folder.empty()) return {{"Manifests:", "off"}};
    const auto applied = status.value("manifests_files", nlohmann::json(0));
    const nlohmann::json problems = status.value("manifests_problems", nlohmann::json::object());
    std::string summary = folder + ": " + text_of(applied) + (applied == 1 ? " file" : " files") + " applied";
    if (!problems.empty()) summary += ", " + std::to_string(problems.size()) + " not";
    std::vector<std::vector<std::string>> rows{{"Manifests:", summary}};
    for (const auto& [file, problem] : problems.items()) {
        const std::string text = problem.is_string() ? problem.get<std::string>() : problem.dump();
        // A parser message already starts with the file's path.
        rows.push_back({"", file.empty() || text.starts_with(file) ? text : file + ": " + text});
    }
    return rows;
}

void print_status(std::ostream& out, const nlohmann::json& status, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << status.dump() << '\n';
        return;
    }
    auto field = [&](const char* key) { return status.contains(key) ? text_of(status[key]) : std::string("-"); };
    std::vector<std::vector<std::string>> rows{
        {"Node:", field("node")},
        {"Version:", field("version")},
        {"State:", field("state")},
        {"Uptime:", status.contains("uptime_seconds") && status["uptime_seconds"].is_number()
                        ? duration_of(status["uptime_seconds"].get<std::uint64_t>())
                        : "-"},
        {"Pin dir:", field("pin_dir")},
        {"Config:", field("config_path")},
        {"Devices:", field("devices")},
        {"Modules:", field("modules_running") + " running, " + field("modules_failed") + " failed"},
        {"Pod MTU:", field("pod_mtu")},
        {"KV store:", kvstore_summary(status)},
    };
    for (auto& row : manifests_rows(status)) rows.push_back(std::move(row));
    print_table(out, {""}, rows);
}

void print_kvstore(std::ostream& out, const nlohmann::json& status, OutputFormat format) {
    auto text = [&](const char* key) {
        return status.contains(key) && status[key].is_string() ? status[key].get<std::string>() : std::string();
    };
    auto number = [&](const char* key, std::int64_t fallback) {
        return status.contains(key) && status[key].is_number() ? status[key].get<std::int64_t>() : fallback;
    };
    const std::string state = text("kvstore_state");
    const bool off = state.empty() || state == "off";
    if (format == OutputFormat::Json) {
        nlohmann::json kv = {{"state", off ? "off" : state}};
        if (!off) {
            kv.update({{"cluster", text("cluster_name")},
                       {"cluster_id", number("cluster_id", 0)},
                       {"endpoint", text("kvstore_endpoint")},
                       {"since", number("kvstore_since", 0)},
                       {"connects", number("kvstore_connects", 0)},
                       {"revision", number("kvstore_revision", 0)},
                       {"lag_ms", number("kvstore_lag_ms", -1)},
                       {"lease", text("kvstore_lease")},
                       {"lease_ttl", number("kvstore_lease_ttl", 0)},
                       {"watches", status.value("kvstore_watches", nlohmann::json::object())},
                       {"error", text("kvstore_error")}});
        }
        out << kv.dump() << '\n';
        return;
    }
    if (off) {
        out << "off: no [kvstore] in membrane.toml, so this node keeps its state to itself\n";
        return;
    }
    const std::time_t since = static_cast<std::time_t>(number("kvstore_since", 0));
    std::tm utc{};
    gmtime_r(&since, &utc);
    char since_text[32];
    std::strftime(since_text, sizeof since_text, "%Y-%m-%d %H:%M:%S UTC", &utc);
    const std::int64_t connects = number("kvstore_connects", 0);
    const std::int64_t lag = number("kvstore_lag_ms", -1);
    const std::string lease = text("kvstore_lease");
    std::vector<std::vector<std::string>> rows{
        {"Cluster:", text("cluster_name") + " (id " + std::to_string(number("cluster_id", 0)) + ")"},
        {"Store:", state + (state == "disconnected" ? " from " : state == "closed" ? " " : " to ") + text("kvstore_endpoint") + " since " +
                       since_text + " (" + std::to_string(connects) + (connects == 1 ? " connection)" : " connections)")},
        {"Revision:", std::to_string(number("kvstore_revision", 0)) + " (the newest seen)"},
        {"Lag:", lag < 0 ? "- (the store never answered)"
                         : seconds_of(lag) + " since the store last answered"},
        {"Lease:", (lease.empty() ? std::string("none yet") : lease) + " (TTL " +
                       std::to_string(number("kvstore_lease_ttl", 0)) + " s)"},
    };
    bool first = true;
    const nlohmann::json watches = status.value("kvstore_watches", nlohmann::json::object());
    for (const auto& [prefix, revision] : watches.items()) {
        const std::int64_t at = revision.is_number() ? revision.get<std::int64_t>() : 0;
        rows.push_back({first ? "Watches:" : "", prefix + " " + (at > 0 ? "at revision " + std::to_string(at) : "listing")});
        first = false;
    }
    if (!text("kvstore_error").empty()) rows.push_back({"Last error:", text("kvstore_error")});
    print_table(out, {""}, rows);
}

void print_applied(std::ostream& out, const nlohmann::json& outcomes, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << outcomes.dump() << '\n';
        return;
    }
    for (const auto& o : outcomes) {
        std::string kind = o.value("kind", "");
        std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return std::tolower(c); });
        const std::string ns = o.value("namespace", "");
        out << kind << "/" << o.value("name", "") << (ns.empty() ? "" : " -n " + ns) << " " << o.value("action", "")
            << '\n';
    }
}

void print_objects(std::ostream& out, const nlohmann::json& documents, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << documents.dump() << '\n';
        return;
    }
    bool namespaced = false;
    for (const auto& d : documents) namespaced = namespaced || d["metadata"].contains("namespace");
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : documents) {
        const auto& meta = d["metadata"];
        std::vector<std::string> row{text_of(d["kind"])};
        if (namespaced) row.push_back(meta.value("namespace", "-"));
        row.push_back(text_of(meta["name"]));
        row.push_back(labels_of(meta.value("labels", nlohmann::json::object())));
        rows.push_back(std::move(row));
    }
    std::vector<std::string> headers{"KIND"};
    if (namespaced) headers.push_back("NAMESPACE");
    headers.insert(headers.end(), {"NAME", "LABELS"});
    if (rows.empty()) {
        out << "no objects\n";
        return;
    }
    print_table(out, headers, rows);
}

void print_modules(std::ostream& out, const nlohmann::json& modules, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << modules.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : modules) {
        rows.push_back({text_of(m["name"]), text_of(m["state"]), text_of(m["generation"]), text_of(m["sdk"]),
                        text_of(m["stages"]), text_of(m["path"]), m["message"].get<std::string>()});
    }
    print_table(out, {"NAME", "STATE", "GEN", "SDK", "STAGES", "PATH", "MESSAGE"}, rows);
}

void print_endpoints(std::ostream& out, const nlohmann::json& endpoints, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << endpoints.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : endpoints) {
        rows.push_back({text_of(e["id"]), e["container_id"].get<std::string>().substr(0, kShortContainerId),
                        text_of(e["ifname"]), text_of(e["address"]), text_of(e["identity"]), labels_of(e["labels"]),
                        text_of(e["state"])});
    }
    print_table(out, {"ID", "CONTAINER", "IFNAME", "ADDRESS", "IDENTITY", "LABELS", "STATE"}, rows);
}

void print_endpoint(std::ostream& out, const nlohmann::json& e, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << e.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID:", text_of(e["id"])},
        {"Container:", text_of(e["container_id"])},
        {"Interface:", text_of(e["ifname"])},
        {"Netns:", text_of(e["netns"])},
        {"Host interface:", text_of(e["host_ifname"]) + " (ifindex " + text_of(e["host_ifindex"]) + ")"},
        {"Address:", text_of(e["address"])},
        {"MAC:", text_of(e["mac"])},
        {"Identity:", text_of(e["identity"])},
        {"Labels:", labels_of(e["labels"])},
        {"State:", text_of(e["state"])},
    };
    if (const auto policy = e.find("policy"); policy != e.end()) {
        for (auto& row : policy_rows(*policy)) rows.push_back(std::move(row));
    }
    print_table(out, {""}, rows);
}

nlohmann::json endpoint_policy(const nlohmann::json& status, std::uint64_t id) {
    nlohmann::json policy{{"module", kPolicyRunning},
                          {"enforcement", status.value("enforcement", "")},
                          {"datapath_error", status.value("datapath_error", "")}};
    for (const auto& e : list_in(status, "endpoints")) {
        const auto found = e.find("id");
        if (found == e.end() || *found != id) continue;
        policy["ingress_enforced"] = e.value("ingress_enforced", false);
        policy["egress_enforced"] = e.value("egress_enforced", false);
        policy["policies"] = list_in(e, "policies");
        policy["rules"] = e.value("rules", 0);
        return policy;
    }
    policy["message"] = "policy-l3l4 does not list endpoint " + std::to_string(id) + " yet: ask again in a moment";
    return policy;
}

nlohmann::json endpoint_policy_not_running(const std::string& why) {
    // Enforcement unknown (null): nothing is enforced if the module never ran, everything is
    // dropped if it was unloaded or quarantined (its fail-closed stages stay empty).
    return {{"module", kPolicyNotRunning}, {"ingress_enforced", nullptr}, {"egress_enforced", nullptr},
            {"policies", nlohmann::json::array()}, {"rules", 0}, {"message", why}};
}

nlohmann::json endpoint_policy_unknown(const std::string& why) {
    return {{"module", kPolicyUnknown}, {"message", why}};
}

void print_identities(std::ostream& out, const nlohmann::json& identities, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << identities.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& i : identities)
        rows.push_back({text_of(i["id"]), yes_no(i["reserved"]), text_of(i["endpoints"]), labels_of(i["labels"])});
    print_table(out, {"ID", "RESERVED", "ENDPOINTS", "LABELS"}, rows);
}

void print_nodes(std::ostream& out, const nlohmann::json& nodes, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << nodes.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : nodes)
        rows.push_back({text_of(n["name"]), text_of(n["ip"]), text_of(n["pod_cidr"]), yes_no(n["local"])});
    print_table(out, {"NAME", "IP", "POD CIDR", "LOCAL"}, rows);
}

void print_stats(std::ostream& out, const nlohmann::ordered_json& stats, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << stats.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, packets] : stats.items()) rows.push_back({name, std::to_string(packets.get<std::uint64_t>())});
    print_table(out, {"REASON", "PACKETS"}, rows);
}

void print_policy_list(std::ostream& out, const nlohmann::json& status, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << status.dump() << '\n';
        return;
    }
    out << "enforcement " << field_of(status, "enforcement") << ", "
        << count_of(field_of(status, "policies"), "policy", "policies") << ", "
        << count_of(field_of(status, "datapath_rules"), "rule", "rules") << " in the datapath\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : list_in(status, "endpoints")) {
        rows.push_back({field_of(e, "id"), field_of(e, "ipv4"), field_of(e, "identity"),
                        enforced(e, "ingress_enforced"), enforced(e, "egress_enforced"), field_of(e, "rules"),
                        refs_of(list_in(e, "policies"))});
    }
    if (rows.empty())
        out << "no endpoints on this node\n";
    else
        print_table(out, {"ENDPOINT", "ADDRESS", "IDENTITY", "INGRESS", "EGRESS", "RULES", "POLICIES"}, rows);
    for (const auto& warning : list_in(status, "warnings")) out << "warning: " << text_of(warning) << '\n';
    const std::string error = status.value("datapath_error", "");
    if (!error.empty()) {
        out << "error: the datapath does not hold every rule (" << error
            << "): the selected endpoints are closed both ways until a change of policy applies\n";
    }
}

nlohmann::json select_policy(const nlohmann::json& status, const std::string& name) {
    std::set<std::string> refs;  // each policy this node knows of, once
    for (const auto& e : list_in(status, "endpoints")) {
        for (const auto& ref : list_in(e, "policies")) {
            if (names_policy(text_of(ref), name)) refs.insert(text_of(ref));
        }
    }
    for (const auto& rule : list_in(status, "rules")) {
        const std::string ref = rule.value("policy", "");
        if (names_policy(ref, name)) refs.insert(ref);
    }
    if (refs.empty()) {
        throw PolicyNotFound("no policy named " + name +
                             " selects an endpoint of this node or has rules here; `membranectl get cnp` "
                             "(netpol, ccnp) lists the applied ones");
    }
    if (refs.size() > 1) {
        std::string all;
        for (const auto& ref : refs) all += (all.empty() ? "" : ", ") + ref;
        throw PolicyNotFound(name + " names " + std::to_string(refs.size()) + " policies (" + all +
                             "): give NAMESPACE/NAME, or the whole \"KIND NAMESPACE/NAME\"");
    }
    const std::string ref = *refs.begin();
    nlohmann::json endpoints = nlohmann::json::array();
    for (const auto& e : list_in(status, "endpoints")) {
        const auto& selecting = list_in(e, "policies");
        if (std::find(selecting.begin(), selecting.end(), ref) != selecting.end()) endpoints.push_back(e);
    }
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& rule : list_in(status, "rules")) {
        if (rule.value("policy", "") == ref) rules.push_back(rule);
    }
    return {{"policy", ref}, {"endpoints", std::move(endpoints)}, {"rules", std::move(rules)}};
}

void print_policy(std::ostream& out, const nlohmann::json& selected, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << selected.dump() << '\n';
        return;
    }
    out << "Policy: " << field_of(selected, "policy") << "\n\n";
    std::vector<std::vector<std::string>> endpoints;
    for (const auto& e : list_in(selected, "endpoints")) {
        endpoints.push_back({field_of(e, "id"), field_of(e, "ipv4"),
                             enforced(e, "ingress_enforced"), enforced(e, "egress_enforced")});
    }
    if (endpoints.empty())
        out << "It selects no endpoint of this node.\n";
    else
        print_table(out, {"ENDPOINT", "ADDRESS", "INGRESS", "EGRESS"}, endpoints);
    out << '\n';
    std::vector<std::vector<std::string>> rules;
    bool l7 = false;
    for (const auto& rule : list_in(selected, "rules")) {
        std::vector<std::string> row{field_of(rule, "rule_id"), field_of(rule, "direction"), field_of(rule, "index"),
                                     rule.value("deny", false) ? "deny" : "allow"};
        // A row without a note ends at ACTION: no trailing blanks.
        if (rule.value("l7", false)) {
            row.push_back(kL7Note);
            l7 = true;
        }
        rules.push_back(std::move(row));
    }
    if (rules.empty()) {
        out << "It has no rules of its own.\n";
        return;
    }
    std::vector<std::string> headers{"RULE", "DIRECTION", "INDEX", "ACTION"};
    if (l7) headers.push_back("NOTE");
    print_table(out, headers, rules);
}

}  // namespace membrane::cli
