// The CNI commands. Each gets the validated environment and config and
// either returns what to print on stdout or throws CniError.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cni_args.hpp"
#include "cni_environment.hpp"
#include "network_config.hpp"

namespace membrane::cni {

struct Invocation {
    Environment env;
    NetworkConfig config;
    Labels labels;  // config labels, then CNI_ARGS' pod namespace and name
};

nlohmann::json add_primary(const Invocation& in);   // no prevResult: membrane makes the interface
nlohmann::json add_chained(const Invocation& in);   // prevResult: another plugin made it
void del(const Invocation& in);
void check(const Invocation& in);

}  // namespace membrane::cni
