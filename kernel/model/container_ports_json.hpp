// Named container ports as JSON, one shape wherever the agent writes them:
// its endpoint record and the endpoint records it publishes in the cluster
// store. [{"name": "http", "port": 8080, "protocol": 6}, ...]
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "membrane/model.hpp"

namespace membrane::kernel {

nlohmann::json container_ports_to_json(const std::vector<ContainerPort>& ports);

// The ports of `array`; throws std::invalid_argument naming the first entry
// that is not a named port (another node's record is checked like any input),
// nlohmann::json::exception for a wrong type.
std::vector<ContainerPort> container_ports_from_json(const nlohmann::json& array);

}  // namespace membrane::kernel
