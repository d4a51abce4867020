// [cluster] and [kvstore]: reading and checking them (the settings are in
// agent_config.hpp), and the shape of an etcd endpoint URL, which the store
// needs again to dial it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "config/agent_config.hpp"

namespace membrane::kernel {

// "http://host[:port][/]" or "https://...": host a DNS name, an IPv4
// address or a bracketed IPv6 address; the port defaults to etcd's 2379.
struct EndpointUrl {
    bool tls = false;
    std::string host;  // "10.0.0.1", "etcd-1.example", "[fd00::1]"
    std::uint16_t port = 2379;

    std::string authority() const { return host + ":" + std::to_string(port); }  // gRPC's target
};

// Null and `problem` says why ("has no scheme", ...) when `url` is not one.
std::optional<EndpointUrl> parse_endpoint_url(std::string_view url, std::string* problem = nullptr);

ClusterSettings read_cluster(const toml::table& table);
// Throws ConfigError "file:line:column: ..." at the first bad key.
KvstoreSettings read_kvstore(const toml::table& table);

}  // namespace membrane::kernel
