#include "model/endpoint_store.hpp"

#include <set>

#include "model/container_ports_json.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

constexpr int kEndpointsFormat = 1;

nlohmann::json to_json(const EndpointInfo& e, const std::vector<ContainerPort>& ports) {
    // The state (ready/disconnected) is not stored: restore decides it anew.
    nlohmann::json out = {{"id", e.id},           {"container_id", e.container_id}, {"ifname", e.ifname},
                          {"netns", e.netns},     {"host_ifname", e.host_ifname},   {"ipv4", e.ipv4},
                          {"mac", e.mac},         {"labels", e.labels},             {"identity", e.identity},
                          {"host_ifindex", e.host_ifindex}};
    if (!ports.empty()) out["ports"] = container_ports_to_json(ports);
    return out;
}

std::vector<ContainerPort> ports_from_json(const nlohmann::json& j) {
    if (!j.contains("ports")) return {};  // records from before ports, and endpoints without
    return container_ports_from_json(j.at("ports"));
}

EndpointInfo from_json(const nlohmann::json& j) {
    EndpointInfo e;
    e.id = j.at("id").get<std::uint64_t>();
    e.container_id = j.at("container_id").get<std::string>();
    e.ifname = j.at("ifname").get<std::string>();
    e.netns = j.at("netns").get<std::string>();
    e.host_ifname = j.at("host_ifname").get<std::string>();
    e.ipv4 = j.at("ipv4").get<std::string>();
    e.mac = j.at("mac").get<std::string>();
    e.labels = j.at("labels").get<Labels>();
    e.identity = j.at("identity").get<std::uint32_t>();
    // Restore compares it with the link that now has the name; records from
    // before it was stored have none (0: not compared).
    e.host_ifindex = j.value("host_ifindex", std::uint32_t{0});
    return e;
}

}  // namespace

EndpointRecord load_endpoint_record(const std::filesystem::path& path) {
    EndpointRecord record;
    const auto document = read_state_file(path);
    if (!document) return record;
    try {
        expect_state_format(path, *document, kEndpointsFormat);
        record.next_id = document->at("next_id").get<std::uint64_t>();
        std::set<std::uint64_t> ids;
        for (const auto& item : document->at("endpoints")) {
            auto endpoint = from_json(item);
            if (endpoint.id == 0 || endpoint.id >= record.next_id || !ids.insert(endpoint.id).second) {
                throw corrupt_record(path, "endpoint id " + std::to_string(endpoint.id) +
                                               " is duplicated or out of range");
            }
            if (auto ports = ports_from_json(item); !ports.empty()) record.ports[endpoint.id] = std::move(ports);
            record.endpoints.push_back(std::move(endpoint));
        }
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(path, std::string("not an endpoint record the agent wrote (") + e.what() + ")");
    } catch (const std::invalid_argument& e) {
        throw corrupt_record(path, e.what());
    }
    return record;
}

void save_endpoint_record(const std::filesystem::path& path, const EndpointRecord& record) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& endpoint : record.endpoints) {
        const auto ports = record.ports.find(endpoint.id);
        items.push_back(to_json(endpoint, ports == record.ports.end() ? std::vector<ContainerPort>{} : ports->second));
    }
    write_state_file(path, {{"format", kEndpointsFormat}, {"next_id", record.next_id}, {"endpoints", items}});
}

}  // namespace membrane::kernel
