// The host side of a pod's veth: "mbr" + the first 11 hex digits of
// sha256(container_id + "/" + ifname). Stable, so DEL finds it from the
// same two values without any state, and 14 characters (< IFNAMSIZ).
#pragma once

#include <string>

namespace membrane::cni {

inline constexpr const char* kHostVethPrefix = "mbr";

std::string host_veth_name(const std::string& container_id, const std::string& ifname);

// Lower-case hex of the SHA-256 of `data` (64 characters).
std::string sha256_hex(const std::string& data);

}  // namespace membrane::cni
