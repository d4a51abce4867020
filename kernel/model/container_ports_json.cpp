#include "model/container_ports_json.hpp"

#include <stdexcept>

#include "membrane/policy.hpp"

namespace membrane::kernel {

nlohmann::json container_ports_to_json(const std::vector<ContainerPort>& ports) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : ports) out.push_back({{"name", p.name}, {"port", p.port}, {"protocol", p.protocol}});
    return out;
}

std::vector<ContainerPort> container_ports_from_json(const nlohmann::json& array) {
    std::vector<ContainerPort> out;
    for (const auto& item : array) {
        ContainerPort port{item.at("name").get<std::string>(), item.at("port").get<std::uint16_t>(),
                           item.at("protocol").get<std::uint8_t>()};
        if (!policy::is_port_name(port.name) || port.port == 0 ||
            (port.protocol != 6 && port.protocol != 17 && port.protocol != 132)) {
            throw std::invalid_argument("not a named container port: " + item.dump());
        }
        out.push_back(std::move(port));
    }
    return out;
}

}  // namespace membrane::kernel
