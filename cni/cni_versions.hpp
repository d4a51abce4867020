// The CNI spec versions membrane-cni speaks, and what differs between them.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace membrane::cni {

inline constexpr const char* kLatestVersion = "1.0.0";

// Oldest first: 0.3.0 and 0.3.1 share the result format of 0.4.0.
const std::vector<std::string>& supported_versions();
bool is_supported_version(const std::string& version);

// "0.4.0" < "1.0.0"; a version that does not parse compares as 0.0.0.
int compare_versions(const std::string& a, const std::string& b);

// CHECK came with 0.4.0.
bool version_has_check(const std::string& version);
// Before 1.0.0 every ips[] entry carries "version": "4" | "6".
bool version_has_ip_version_field(const std::string& version);

// The VERSION command's answer.
nlohmann::json version_info_json(const std::string& requested_version);

}  // namespace membrane::cni
