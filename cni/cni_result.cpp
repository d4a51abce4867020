#include "cni_result.hpp"

#include <arpa/inet.h>

#include "cni_error.hpp"
#include "cni_versions.hpp"

namespace membrane::cni {
namespace {

std::string address_family_version(const std::string& cidr) {
    return cidr.find(':') != std::string::npos ? "6" : "4";
}

[[noreturn]] void invalid_result(const std::string& what, const std::string& why) {
    throw CniError(ErrorCode::InvalidNetworkConfig, "invalid " + what + ": " + why);
}

std::string optional_string(const nlohmann::json& object, const char* key, const std::string& where) {
    if (!object.contains(key) || object.at(key).is_null()) return {};
    if (!object.at(key).is_string()) invalid_result(where, std::string("'") + key + "' is not a string");
    return object.at(key).get<std::string>();
}

}  // namespace

std::string ipv4_of_cidr(const std::string& cidr) {
    const std::size_t slash = cidr.find('/');
    if (slash == std::string::npos) return {};
    const std::string ip = cidr.substr(0, slash);
    const std::string prefix = cidr.substr(slash + 1);
    in_addr parsed{};
    if (inet_pton(AF_INET, ip.c_str(), &parsed) != 1) return {};
    if (prefix.empty() || prefix.size() > 2 || prefix.find_first_not_of("0123456789") != std::string::npos) return {};
    if (std::stoi(prefix) > 32) return {};
    return ip;
}

nlohmann::json result_json(const Result& result, const std::string& cni_version) {
    nlohmann::json out = {{"cniVersion", cni_version}};
    out["interfaces"] = nlohmann::json::array();
    for (const auto& i : result.interfaces) {
        nlohmann::json entry = {{"name", i.name}};
        if (!i.mac.empty()) entry["mac"] = i.mac;
        if (!i.sandbox.empty()) entry["sandbox"] = i.sandbox;
        out["interfaces"].push_back(entry);
    }
    out["ips"] = nlohmann::json::array();
    for (const auto& ip : result.ips) {
        nlohmann::json entry;
        if (version_has_ip_version_field(cni_version)) entry["version"] = address_family_version(ip.address);
        entry["address"] = ip.address;
        if (!ip.gateway.empty()) entry["gateway"] = ip.gateway;
        if (ip.interface) entry["interface"] = *ip.interface;
        out["ips"].push_back(entry);
    }
    out["routes"] = nlohmann::json::array();
    for (const auto& route : result.routes) {
        nlohmann::json entry = {{"dst", route.dst}};
        if (!route.gw.empty()) entry["gw"] = route.gw;
        out["routes"].push_back(entry);
    }
    out["dns"] = result.dns;
    return out;
}

Result parse_result(const nlohmann::json& json, const std::string& what) {
    if (!json.is_object()) invalid_result(what, "it is not a JSON object");
    Result result;
    auto array_of = [&](const char* key) -> const nlohmann::json* {
        if (!json.contains(key) || json.at(key).is_null()) return nullptr;
        if (!json.at(key).is_array()) invalid_result(what, std::string("'") + key + "' is not an array");
        return &json.at(key);
    };
    if (const auto* interfaces = array_of("interfaces")) {
        for (std::size_t n = 0; n < interfaces->size(); ++n) {
            const auto& entry = interfaces->at(n);
            const std::string where = what + " interfaces[" + std::to_string(n) + "]";
            if (!entry.is_object()) invalid_result(where, "it is not an object");
            ResultInterface i;
            i.name = optional_string(entry, "name", where);
            if (i.name.empty()) invalid_result(where, "'name' is missing");
            i.mac = optional_string(entry, "mac", where);
            i.sandbox = optional_string(entry, "sandbox", where);
            result.interfaces.push_back(std::move(i));
        }
    }
    if (const auto* ips = array_of("ips")) {
        for (std::size_t n = 0; n < ips->size(); ++n) {
            const auto& entry = ips->at(n);
            const std::string where = what + " ips[" + std::to_string(n) + "]";
            if (!entry.is_object()) invalid_result(where, "it is not an object");
            ResultIp ip;
            ip.address = optional_string(entry, "address", where);
            if (ip.address.empty()) invalid_result(where, "'address' is missing");
            ip.gateway = optional_string(entry, "gateway", where);
            if (entry.contains("interface") && !entry.at("interface").is_null()) {
                if (!entry.at("interface").is_number_integer()) invalid_result(where, "'interface' is not an integer");
                const int index = entry.at("interface").get<int>();
                if (index < 0 || static_cast<std::size_t>(index) >= result.interfaces.size())
                    invalid_result(where, "'interface' " + std::to_string(index) + " is not an index into interfaces");
                ip.interface = index;
            }
            result.ips.push_back(std::move(ip));
        }
    }
    if (const auto* routes = array_of("routes")) {
        for (std::size_t n = 0; n < routes->size(); ++n) {
            const auto& entry = routes->at(n);
            const std::string where = what + " routes[" + std::to_string(n) + "]";
            if (!entry.is_object()) invalid_result(where, "it is not an object");
            ResultRoute route;
            route.dst = optional_string(entry, "dst", where);
            if (route.dst.empty()) invalid_result(where, "'dst' is missing");
            route.gw = optional_string(entry, "gw", where);
            result.routes.push_back(std::move(route));
        }
    }
    if (json.contains("dns") && json.at("dns").is_object()) result.dns = json.at("dns");
    return result;
}

nlohmann::json convert_result_json(nlohmann::json result, const std::string& cni_version) {
    result["cniVersion"] = cni_version;
    if (result.contains("ips") && result["ips"].is_array()) {
        for (auto& ip : result["ips"]) {
            if (!ip.is_object()) continue;
            if (!version_has_ip_version_field(cni_version)) {
                ip.erase("version");
            } else if (!ip.contains("version") && ip.contains("address") && ip["address"].is_string()) {
                ip["version"] = address_family_version(ip["address"].get<std::string>());
            }
        }
    }
    return result;
}

}  // namespace membrane::cni

namespace membrane::cni {

std::optional<ResultIp> find_pod_ipv4(const Result& result, const std::string& ifname) {
    const ResultIp* unindexed = nullptr;
    for (const auto& ip : result.ips) {
        if (ipv4_of_cidr(ip.address).empty()) continue;
        if (ip.interface) {
            const auto& iface = result.interfaces.at(static_cast<std::size_t>(*ip.interface));
            if (iface.name == ifname && !iface.sandbox.empty()) return ip;
        } else if (!unindexed) {
            unindexed = &ip;
        }
    }
    if (unindexed) return *unindexed;
    return std::nullopt;
}

}  // namespace membrane::cni
