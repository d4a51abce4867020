#include "model/container_ports_json.hpp"

#include <stdexcept>

#include "membrane/policy.hpp"

namespace membrane::kernel {

nlohmann::json container_ports_to_json(const std::vector<ContainerPort>& ports) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : ports) out.push_back({{"name", p.name}, {"port", p.port}, {"protocol", p.protocol}});
    return out;
}

namespace {

// An unsigned integer no larger than `max`: nlohmann's get<> would wrap 65616
// to 80, and take -1, 80.9 or true.
std::uint32_t bounded(const nlohmann::json& item, const char* key, std::uint32_t max) {
    const auto& value = item.at(key);
    if (!value.is_number_unsigned() || value.get<std::uint64_t>() > max) {
        throw std::invalid_argument("not a named container port (" + std::string(key) + "): " + item.dump());
    }
    return static_cast<std::uint32_t>(value.get<std::uint64_t>());
}

}  // namespace

std::vector<ContainerPort> container_ports_from_json(const nlohmann::json& array) {
    if (!array.is_array()) throw std::invalid_argument("named container ports are not a list: " + array.dump());
    std::vector<ContainerPort> out;
    for (const auto& item : array) {
        ContainerPort port{item.at("name").get<std::string>(), static_cast<std::uint16_t>(bounded(item, "port", 65535)),
                           static_cast<std::uint8_t>(bounded(item, "protocol", 255))};
        if (!policy::is_port_name(port.name) || port.port == 0 ||
            (port.protocol != 6 && port.protocol != 17 && port.protocol != 132)) {
            throw std::invalid_argument("not a named container port: " + item.dump());
        }
        out.push_back(std::move(port));
    }
    return out;
}

}  // namespace membrane::kernel
