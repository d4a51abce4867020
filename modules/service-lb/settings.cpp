#include "settings.hpp"

#include <arpa/inet.h>

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

// "A.B.C.D/N" with its host bits zero (the SDK's CIDR reading), or throws naming `key` and the item.
policy::detail::Ipv4Cidr parse_cidr(ConfigReader& read, const toml::node& item, const std::string& text) {
    const auto refuse = [&](const std::string& why) {
        return read.error_at(item, "nodeport_addresses", why + ", not \"" + text + "\"");
    };
    policy::detail::Ipv4Cidr cidr;
    try {
        cidr = policy::detail::parse_cidr(text, "nodeport_addresses");
    } catch (const std::exception&) {
        throw refuse("must hold IPv4 CIDRs such as \"192.168.0.0/16\" or \"127.0.0.1/32\"");
    }
    // The SDK clears host bits, as Kubernetes does for a policy; a setting that has them is a typo.
    if (cidr.str() != text) throw refuse("holds a CIDR with host bits set");
    return cidr;
}

// The *_map_size keys and the MapSizes field each sets.
struct MapSizeKey {
    const char* key;
    std::uint32_t MapSizes::*field;
};
constexpr MapSizeKey kMapSizeKeys[] = {
    {"services_map_size", &MapSizes::services}, {"backends_map_size", &MapSizes::backends},
    {"affinity_map_size", &MapSizes::affinity}, {"nat_map_size", &MapSizes::nat},
    {"reverse_map_size", &MapSizes::reverse},   {"udp_map_size", &MapSizes::udp},
    {"maglev_map_size", &MapSizes::maglev},
};

MapSizes read_map_sizes(ConfigReader& read) {
    MapSizes sizes;
    for (const auto& [key, field] : kMapSizeKeys) {
        const auto entries = read.get<std::int64_t>(key, sizes.*field);
        if (entries < kMinMapSize || entries > kMaxMapSize) {
            throw read.error(key, "must be a number of entries from " + std::to_string(kMinMapSize) + " to " +
                                      std::to_string(kMaxMapSize) + ", not " + std::to_string(entries));
        }
        sizes.*field = static_cast<std::uint32_t>(entries);
    }
    return sizes;
}

bool holds(const policy::detail::Ipv4Cidr& cidr, const std::string& address) {
    in_addr parsed{};
    return inet_pton(AF_INET, address.c_str(), &parsed) == 1 && cidr.contains({ntohl(parsed.s_addr), 32});
}

}  // namespace

std::vector<std::string> node_port_addresses(const Settings& settings, const std::vector<std::string>& node_addresses) {
    if (settings.node_port_cidrs.empty()) return node_addresses;
    const auto wanted = [&](const std::string& address) {
        for (const auto& cidr : settings.node_port_cidrs) {
            if (holds(cidr, address)) return true;
        }
        return false;
    };
    std::vector<std::string> out;
    for (const auto& address : node_addresses) {
        if (wanted(address)) out.push_back(address);
    }
    if (wanted("127.0.0.1")) out.push_back("127.0.0.1");
    return out;
}

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
    settings.map_sizes = read_map_sizes(read);
    if (const toml::node* cidrs = table.get("nodeport_addresses")) {
        const auto texts = read.strings("nodeport_addresses");
        std::size_t i = 0;
        for (const toml::node& item : *cidrs->as_array()) {
            settings.node_port_cidrs.push_back(parse_cidr(read, item, texts[i++]));
        }
    } else {
        read.strings("nodeport_addresses");  // known, absent
    }
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
