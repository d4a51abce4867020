// [metrics]: reading and checking it (the settings are in agent_config.hpp),
// and the shape of the address the Prometheus endpoint listens on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "config/agent_config.hpp"

namespace membrane::kernel {

// "IPv4:port": a dotted quad (no host names: the agent must not depend on a
// resolver to start, and "localhost" could mean ::1) and a port 1..65535.
struct ListenAddress {
    std::uint32_t ipv4 = 0;  // host byte order
    std::uint16_t port = 0;

    std::string str() const;  // "127.0.0.1:9962"
};

// Null and `problem` says why ("has no port ...") when `text` is not one.
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* problem = nullptr);

// Throws ConfigError "file:line:column: 'address' in [metrics] ..." at the
// first bad key.
MetricsSettings read_metrics(const toml::table& table);

}  // namespace membrane::kernel
