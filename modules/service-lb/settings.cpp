#include "settings.hpp"

#include <cstdio>

#include <membrane/config.hpp>

namespace membrane::service_lb {
namespace {

// "LOW-HIGH" with 1 <= LOW <= HIGH <= 65535, or throws naming `key`.
PortRange parse_port_range(ConfigReader& read, const std::string& key, const std::string& text) {
    unsigned low = 0;
    unsigned high = 0;
    char dash = 0;
    char extra = 0;
    if (std::sscanf(text.c_str(), "%u%c%u%c", &low, &dash, &high, &extra) != 3 || dash != '-' || low == 0 ||
        high > 65535 || low > high) {
        throw read.error(key, "must be \"LOW-HIGH\" with 1 <= LOW <= HIGH <= 65535, e.g. \"30000-32767\", not \"" +
                                  text + "\"");
    }
    return PortRange{static_cast<std::uint16_t>(low), static_cast<std::uint16_t>(high)};
}

}  // namespace

Settings read_settings(const toml::table& table, const std::string& where) {
    ConfigReader read(table, where);
    Settings settings;
    settings.socket_lb = read.get<bool>("socket_lb", true);
    settings.node_ports = parse_port_range(read, "node_port_range", read.get<std::string>("node_port_range", "30000-32767"));
    settings.snat_ports = parse_port_range(read, "snat_port_range", read.get<std::string>("snat_port_range", "61000-65535"));
    const auto table_size = read.get<std::int64_t>("maglev_table_size", maglev::kDefaultTableSize);
    if (const auto problem = maglev::table_size_problem(table_size); !problem.empty()) {
        throw read.error("maglev_table_size", problem);
    }
    settings.maglev_table_size = static_cast<std::uint32_t>(table_size);
    read.finish();
    if (settings.snat_ports.low <= settings.node_ports.high && settings.node_ports.low <= settings.snat_ports.high) {
        throw read.error("snat_port_range", "overlaps node_port_range: a NodePort's connection could be taken for "
                                            "another's reply");
    }
    return settings;
}

std::string range_text(const PortRange& range) {
    return std::to_string(range.low) + "-" + std::to_string(range.high);
}

}  // namespace membrane::service_lb
