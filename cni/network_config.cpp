#include "network_config.hpp"

#include "cni_environment.hpp"
#include "cni_error.hpp"
#include "cni_versions.hpp"
#include "utf8.hpp"
#include "membrane/policy.hpp"

namespace membrane::cni {
namespace {

[[noreturn]] void invalid_config(const std::string& why, const std::string& details = {}) {
    throw CniError(ErrorCode::InvalidNetworkConfig, "invalid network config: " + why, details);
}

// {"key": "value", ...}: every value a string.
void merge_label_object(const nlohmann::json& object, const std::string& where, Labels& into) {
    if (!object.is_object()) invalid_config("'" + where + "' must be an object of string labels");
    for (const auto& [key, value] : object.items()) {
        if (key.empty()) invalid_config("'" + where + "' has an empty label key");
        if (!value.is_string()) invalid_config("label '" + key + "' in '" + where + "' is not a string");
        into[key] = value.get<std::string>();
    }
}

// The CNI conventions' [{"key": "...", "value": "..."}], or an object.
void merge_label_list(const nlohmann::json& labels, const std::string& where, Labels& into) {
    if (labels.is_object()) return merge_label_object(labels, where, into);
    if (!labels.is_array()) invalid_config("'" + where + "' must be an object or a list of {key, value}");
    for (const auto& entry : labels) {
        if (!entry.is_object() || !entry.contains("key") || !entry.contains("value") || !entry["key"].is_string() ||
            !entry["value"].is_string() || entry["key"].get<std::string>().empty())
            invalid_config("every entry of '" + where + "' must be {\"key\": string, \"value\": string}", entry.dump());
        into[entry["key"].get<std::string>()] = entry["value"].get<std::string>();
    }
}

// Which field holds U+FFFD first, in document order: "'args.labels[0].value'"
// or "a key in 'args'"; "" when none does (or it is nested too deep to look).
std::string path_holding_replacement(const nlohmann::ordered_json& json, const std::string& path, int depth = 0) {
    static constexpr std::string_view kReplacement = "\xef\xbf\xbd";
    if (depth > 64) return "";
    if (json.is_string())
        return json.get_ref<const std::string&>().find(kReplacement) != std::string::npos ? "'" + path + "'" : "";
    if (json.is_object()) {
        for (const auto& [key, value] : json.items()) {
            const std::string here = path.empty() ? key : path + "." + key;
            if (key.find(kReplacement) != std::string::npos)
                return path.empty() ? "a key at the top level" : "a key in '" + path + "'";
            if (auto found = path_holding_replacement(value, here, depth + 1); !found.empty()) return found;
        }
    } else if (json.is_array()) {
        for (std::size_t i = 0; i < json.size(); ++i)
            if (auto found = path_holding_replacement(json[i], path + "[" + std::to_string(i) + "]", depth + 1);
                !found.empty())
                return found;
    }
    return "";
}

// JSON is UTF-8; name the field that is not, so that the runtime's user
// knows what to fix (nlohmann's parse error alone says only "ill-formed").
void require_utf8(const std::string& text) {
    const std::string why = invalid_utf8_problem(text);
    if (why.empty()) return;
    const auto readable = nlohmann::ordered_json::parse(replace_invalid_utf8(text), nullptr, false);
    const std::string field = readable.is_discarded() ? "" : path_holding_replacement(readable, "");
    throw CniError(ErrorCode::DecodingFailure,
                   "the network config on stdin is not valid UTF-8: " + (field.empty() ? "" : field + " holds ") + why);
}

// args.cni.membrane.ports: [{"name": "http", "port": 8080, "protocol": "TCP"}, ...]
// (protocol optional, TCP), as Kubernetes declares container ports.
void parse_ports(const nlohmann::json& ports, std::map<std::string, std::string>& into) {
    const std::string where = "args.cni.membrane.ports";
    if (!ports.is_array()) invalid_config("'" + where + "' must be a list of {name, port, protocol}");
    for (std::size_t i = 0; i < ports.size(); ++i) {
        const std::string at = where + "[" + std::to_string(i) + "]";
        const auto& entry = ports[i];
        if (!entry.is_object()) invalid_config("'" + at + "' must be an object {name, port, protocol}");
        for (const auto& [key, value] : entry.items()) {
            if (key != "name" && key != "port" && key != "protocol")
                invalid_config("'" + at + "." + key + "' is not a key of a port (name, port, protocol)");
        }
        if (!entry.contains("name") || !entry["name"].is_string() || !policy::is_port_name(entry["name"].get<std::string>()))
            invalid_config("'" + at + ".name' must be a port name (at most 15 of a-z, 0-9 and '-', with a letter)",
                    entry.value("name", nlohmann::json()).dump());
        if (!entry.contains("port") || !entry["port"].is_number_integer() || entry["port"].get<std::int64_t>() < 1 ||
            entry["port"].get<std::int64_t>() > 65535)
            invalid_config("'" + at + ".port' must be an integer from 1 to 65535", entry.value("port", nlohmann::json()).dump());
        const std::string protocol = entry.contains("protocol") && entry["protocol"].is_string()
                                         ? entry["protocol"].get<std::string>()
                                         : (entry.contains("protocol") ? "" : "TCP");
        if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP")
            invalid_config("'" + at + ".protocol' must be \"TCP\", \"UDP\" or \"SCTP\"", entry["protocol"].dump());
        const std::string name = entry["name"].get<std::string>();
        if (into.contains(name)) invalid_config("'" + at + ".name': the port name '" + name + "' is given twice");
        into[name] = std::to_string(entry["port"].get<std::int64_t>()) + "/" + protocol;
    }
}

}  // namespace

std::string network_name_problem(const std::string& name) { return container_id_problem(name); }

std::string peek_cni_version(const std::string& text) {
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_object() && json.contains("cniVersion") && json["cniVersion"].is_string())
        return json["cniVersion"].get<std::string>();
    return {};
}

NetworkConfig parse_network_config(const std::string& text) {
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        throw CniError(ErrorCode::DecodingFailure, "no network config on stdin");
    require_utf8(text);
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded())
        throw CniError(ErrorCode::DecodingFailure, "the network config on stdin is not valid JSON",
                       text.substr(0, 200));
    if (!json.is_object())
        throw CniError(ErrorCode::DecodingFailure, "the network config on stdin is not a JSON object",
                       text.substr(0, 200));

    NetworkConfig config;
    if (!json.contains("cniVersion")) {
        config.cni_version = "0.1.0";  // libcni's reading of a config without one
    } else if (!json["cniVersion"].is_string()) {
        invalid_config("'cniVersion' is not a string");
    } else {
        config.cni_version = json["cniVersion"].get<std::string>();
    }
    if (!is_supported_version(config.cni_version)) {
        std::string supported;
        for (const auto& v : supported_versions()) supported += (supported.empty() ? "" : ", ") + v;
        throw CniError(ErrorCode::IncompatibleVersion,
                       "incompatible CNI version: the config is " + config.cni_version +
                           (json.contains("cniVersion") ? "" : " (no cniVersion given)") +
                           ", membrane-cni supports " + supported);
    }

    auto required_string = [&](const char* key) {
        if (!json.contains(key)) invalid_config(std::string("'") + key + "' is missing");
        if (!json[key].is_string()) invalid_config(std::string("'") + key + "' is not a string");
        return json[key].get<std::string>();
    };
    config.name = required_string("name");
    if (auto why = network_name_problem(config.name); !why.empty()) invalid_config("'name' is not valid: " + why, config.name);
    config.type = required_string("type");
    if (config.type.empty()) invalid_config("'type' is empty");

    if (json.contains("dbus_address")) {
        if (!json["dbus_address"].is_string() || json["dbus_address"].get<std::string>().empty())
            invalid_config("'dbus_address' must be a non-empty string (\"system\", \"session\" or a D-Bus address)");
        config.dbus_address = json["dbus_address"].get<std::string>();
    }
    if (json.contains("mtu")) {
        const auto& mtu = json["mtu"];
        if (!mtu.is_number_integer() || mtu.get<std::int64_t>() < 68 || mtu.get<std::int64_t>() > 65535)
            invalid_config("'mtu' must be an integer from 68 to 65535", mtu.dump());
        config.mtu = static_cast<std::uint32_t>(mtu.get<std::int64_t>());
    }

    if (json.contains("labels")) merge_label_object(json["labels"], "labels", config.labels);
    if (json.contains("args")) {
        const auto& args = json["args"];
        if (!args.is_object()) invalid_config("'args' is not an object");
        if (args.contains("labels")) merge_label_list(args["labels"], "args.labels", config.labels);
        if (args.contains("cni") && args["cni"].is_object() && args["cni"].contains("labels"))
            merge_label_list(args["cni"]["labels"], "args.cni.labels", config.labels);
        if (args.contains("cni") && args["cni"].is_object() && args["cni"].contains("membrane")) {
            const auto& ours = args["cni"]["membrane"];
            if (!ours.is_object()) invalid_config("'args.cni.membrane' is not an object");
            for (const auto& [key, value] : ours.items()) {
                if (key != "ports") invalid_config("'args.cni.membrane." + key + "' is not a key membrane-cni knows (ports)");
            }
            if (ours.contains("ports")) parse_ports(ours["ports"], config.ports);
        }
    }
    if (json.contains("runtimeConfig")) {
        const auto& runtime = json["runtimeConfig"];
        if (!runtime.is_object()) invalid_config("'runtimeConfig' is not an object");
        if (runtime.contains("labels")) merge_label_list(runtime["labels"], "runtimeConfig.labels", config.labels);
    }

    if (json.contains("prevResult") && !json["prevResult"].is_null()) {
        config.prev_result = parse_result(json["prevResult"], "prevResult");
        config.prev_result_json = json["prevResult"];
    }
    return config;
}

}  // namespace membrane::cni
