// `membranectl service list|get` and `membranectl lb list`: service-lb's
// answers (its Services and Maps methods) as tables, or as JSON for scripts.
#pragma once

#include <ostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "render.hpp"

namespace membrane::cli {

class ServiceNotFound : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One row per frontend (ClusterIP, NodePort, ExternalIP, LoadBalancer) with
// its backends; a service that has none says why. `reply`: {"services": [...]}.
void print_services(std::ostream& out, const nlohmann::json& reply, OutputFormat format);

// The reply with only the service `name`: "NAMESPACE/NAME", or "NAME" in
// "default". Throws ServiceNotFound.
nlohmann::json select_service(const nlohmann::json& reply, const std::string& name);

// What the BPF maps hold: one row per frontend with its service number,
// flags, affinity and backends in slot order. `reply`: {"frontends": [...]}.
void print_lb_maps(std::ostream& out, const nlohmann::json& reply, OutputFormat format);

}  // namespace membrane::cli
