// The CNI result (SPEC.md "Success"): what ADD prints, what a chained plugin
// receives as prevResult, in the format of the requested spec version.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace membrane::cni {

struct ResultInterface {
    std::string name;
    std::string mac;
    std::string sandbox;  // netns path; empty for a host interface
};

struct ResultIp {
    std::string address;  // CIDR: "10.10.1.5/32"
    std::string gateway;  // optional
    std::optional<int> interface;  // index into interfaces
};

struct ResultRoute {
    std::string dst;  // CIDR
    std::string gw;   // optional
};

struct Result {
    std::vector<ResultInterface> interfaces;
    std::vector<ResultIp> ips;
    std::vector<ResultRoute> routes;
    nlohmann::json dns = nlohmann::json::object();
};

// In `cni_version`'s format (ips[].version before 1.0.0).
nlohmann::json result_json(const Result& result, const std::string& cni_version);

// Reads a result of any supported version. Throws CniError
// InvalidNetworkConfig (7) saying which field is wrong (`what` names it:
// "prevResult").
Result parse_result(const nlohmann::json& json, const std::string& what);

// A result passed through (chained mode): every field kept, cniVersion set,
// ips[].version added (before 1.0.0) or removed (1.0.0 on).
nlohmann::json convert_result_json(nlohmann::json result, const std::string& cni_version);

// "10.10.1.5/32" -> "10.10.1.5"; "" when it is not an IPv4 CIDR.
std::string ipv4_of_cidr(const std::string& cidr);

}  // namespace membrane::cni

namespace membrane::cni {

// The IPv4 entry of prevResult that belongs to the sandbox interface
// `ifname`: an ips[] entry whose interface index names it, else (for a
// result without indexes) the first IPv4 entry. nullopt when there is none.
std::optional<ResultIp> find_pod_ipv4(const Result& result, const std::string& ifname);

}  // namespace membrane::cni
