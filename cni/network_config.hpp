// The network configuration membrane-cni reads on stdin: the spec's keys,
// ours (dbus_address, labels, mtu) and, when chained, prevResult.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cni_args.hpp"
#include "cni_result.hpp"

namespace membrane::cni {

struct NetworkConfig {
    std::string cni_version;
    std::string name;  // the network's name
    std::string type;  // "membrane"
    std::string dbus_address = "system";  // "system", "session" or a D-Bus address
    Labels labels;  // config "labels", then args.labels / args.cni.labels, then runtimeConfig.labels
    std::optional<std::uint32_t> mtu;  // overrides the lease's MTU
    // args.cni.membrane.ports: the pod's named container ports, for policies'
    // named ports: name -> "<port>/<TCP|UDP|SCTP>" (as CreateEndpoint takes them).
    std::map<std::string, std::string> ports;
    std::optional<nlohmann::json> prev_result_json;  // as received
    std::optional<Result> prev_result;
};

// Throws CniError: DecodingFailure (6) for text that is not a JSON object,
// IncompatibleVersion (1) for a cniVersion not supported (a missing one is
// 0.1.0, as libcni reads it), InvalidNetworkConfig (7) naming the bad key.
NetworkConfig parse_network_config(const std::string& text);

// The cniVersion of the text, if it is JSON with a string cniVersion; else "".
// Used to answer VERSION and to format errors in the caller's version.
std::string peek_cni_version(const std::string& text);

// The spec's rule for network names (as for container ids). "" when valid.
std::string network_name_problem(const std::string& name);

}  // namespace membrane::cni
