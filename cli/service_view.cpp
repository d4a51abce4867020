#include "service_view.hpp"

#include <string>
#include <vector>

namespace membrane::cli {
namespace {

std::string address_port(const nlohmann::json& entry) {
    return entry.value("address", std::string("?")) + ":" + std::to_string(entry.value("port", 0));
}

// "10.1.1.5:8080,10.1.2.7:8080" in the reply's order; "" for none.
std::string joined_backends(const nlohmann::json& frontend) {
    std::string joined;
    for (const auto& backend : list_in(frontend, "backends")) joined += (joined.empty() ? "" : ",") + address_port(backend);
    return joined;
}

// The backends; with none, what a client meets instead.
std::string backends_of(const nlohmann::json& frontend) {
    if (auto joined = joined_backends(frontend); !joined.empty()) return joined;
    return frontend.value("drop_when_empty", false) ? "none here (Local traffic policy: dropped)"
                                                    : "none (connections refused)";
}

}  // namespace

void print_services(std::ostream& out, const nlohmann::json& reply, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << reply.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& service : list_in(reply, "services")) {
        const std::string name = service.value("service", std::string("?"));
        const auto& frontends = list_in(service, "frontends");
        if (frontends.empty()) rows.push_back({name, "-", "-", "not served (headless, ExternalName or another proxy's)"});
        for (const auto& frontend : frontends) {
            std::string backends = backends_of(frontend);
            if (const auto timeout = frontend.value("affinity_timeout", 0); timeout > 0) {
                backends += " (ClientIP affinity " + std::to_string(timeout) + "s)";
            }
            rows.push_back({name, frontend.value("kind", std::string("?")),
                            address_port(frontend) + "/" + frontend.value("protocol", std::string("?")),
                            frontend.value("scope", std::string("node")), backends});
        }
    }
    if (rows.empty()) {
        out << "no services\n";
    } else {
        print_table(out, {"SERVICE", "TYPE", "FRONTEND", "CLIENTS", "BACKENDS"}, rows);
    }
    for (const auto& service : list_in(reply, "services")) {
        const std::string problem = service.value("problem", std::string());
        if (!problem.empty()) out << "warning: " << service.value("service", std::string("?")) << ": " << problem << '\n';
    }
}

nlohmann::json select_service(const nlohmann::json& reply, const std::string& name) {
    const std::string wanted = name.find('/') == std::string::npos ? "default/" + name : name;
    for (const auto& service : list_in(reply, "services")) {
        if (service.value("service", std::string()) == wanted) return nlohmann::json{{"services", {service}}};
    }
    throw ServiceNotFound("no service " + wanted + " is applied (`membranectl get svc -A` lists them)");
}

void print_lb_maps(std::ostream& out, const nlohmann::json& reply, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << reply.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& frontend : list_in(reply, "frontends")) {
        const std::string backends = joined_backends(frontend);
        const auto flags = frontend.value("flags", 0);
        // SERVICE_LB_F_* (modules/service-lb/bpf/lb_maps.h).
        std::string flag_names;
        if (flags & 1) flag_names = "drop-when-empty";
        if (flags & 2) {
            std::string ranges;
            for (const auto& range : list_in(frontend, "source_ranges")) {
                ranges += (ranges.empty() ? "" : ",") + range.get<std::string>();
            }
            flag_names += (flag_names.empty() ? "" : " ") + std::string("source-ranges:") + (ranges.empty() ? "none" : ranges);
        }
        rows.push_back({address_port(frontend) + "/" + frontend.value("protocol", std::string("?")),
                        frontend.value("scope", std::string("node")),
                        std::to_string(frontend.value("service_id", 0)),
                        std::to_string(list_in(frontend, "backends").size()),
                        flag_names.empty() ? "-" : flag_names,
                        frontend.value("affinity_timeout", 0) ? std::to_string(frontend.value("affinity_timeout", 0)) + "s"
                                                              : "-",
                        backends.empty() ? "-" : backends});
    }
    if (rows.empty()) {
        out << "the service map is empty\n";
        return;
    }
    print_table(out, {"FRONTEND", "CLIENTS", "SERVICE-ID", "COUNT", "FLAGS", "AFFINITY", "BACKENDS (slot order)"}, rows);
}

}  // namespace membrane::cli
