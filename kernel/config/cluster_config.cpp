#include "config/cluster_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "config/ipv4.hpp"
#include "config/names.hpp"
#include "config/quoting.hpp"
#include "membrane/config.hpp"

namespace membrane::kernel {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kMinClusterId = 1;
constexpr std::int64_t kMaxClusterId = 255;  // 8 bits above an identity's 16
constexpr std::int64_t kMinIdentityGrace = 1;
constexpr std::int64_t kMaxIdentityGrace = 7 * 24 * 3600;
constexpr std::int64_t kMinLeaseTtl = 5;     // etcd's own floor is about 1.5 s; below 5 a slow loop loses its keys
constexpr std::int64_t kMaxLeaseTtl = 3600;
constexpr double kMinTimeout = 0.1;    // seconds
constexpr double kMaxTimeout = 300.0;


bool is_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253) return false;
    return std::all_of(host.begin(), host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-';
    }) && host.front() != '.' && host.front() != '-';
}

bool is_bracketed_ipv6(std::string_view host) {
    if (host.size() < 4 || host.front() != '[' || host.back() != ']') return false;
    const auto inner = host.substr(1, host.size() - 2);
    return std::all_of(inner.begin(), inner.end(), [](unsigned char c) {
        return std::isxdigit(c) || c == ':' || c == '.';
    }) && inner.find(':') != std::string_view::npos;
}

// A TLS file: absolute, a regular file this process can read.
fs::path read_tls_file(ConfigReader& read, std::string_view key) {
    auto value = read.optional<std::string>(key);
    if (!value) return {};
    const fs::path path(*value);
    if (!path.is_absolute()) throw read.error(key, "must be an absolute path, not " + single_quoted(*value));
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) throw read.error(key, "names " + single_quoted(*value) + ", which does not exist");
    if (!fs::is_regular_file(status)) throw read.error(key, "names " + single_quoted(*value) + ", which is not a file");
    if (::access(path.c_str(), R_OK) != 0) {
        throw read.error(key, "names " + single_quoted(*value) + ", which cannot be read: " + std::strerror(errno));
    }
    return path;
}

std::chrono::milliseconds read_timeout(ConfigReader& read, std::string_view key, std::chrono::milliseconds fallback) {
    const double seconds = read.get<double>(key, static_cast<double>(fallback.count()) / 1000.0);
    if (!(seconds >= kMinTimeout && seconds <= kMaxTimeout)) {
        throw read.error(key, "must be between 0.1 and 300 (seconds), not " + fmt::format("{}", seconds));
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

}  // namespace

std::optional<EndpointUrl> parse_endpoint_url(std::string_view url, std::string* problem) {
    auto fail = [&](std::string why) -> std::optional<EndpointUrl> {
        if (problem) *problem = std::move(why);
        return std::nullopt;
    };
    EndpointUrl out;
    std::string_view rest;
    if (url.starts_with("http://")) {
        rest = url.substr(7);
    } else if (url.starts_with("https://")) {
        out.tls = true;
        rest = url.substr(8);
    } else {
        return fail("must start with http:// or https://");
    }
    if (rest.ends_with("/")) rest.remove_suffix(1);
    if (rest.find_first_of("/?#@") != std::string_view::npos) return fail("must be scheme://host[:port] without a path, query or user");
    std::string_view host = rest;
    std::string_view port;
    if (rest.starts_with("[")) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return fail("has an IPv6 address without its closing ']'");
        host = rest.substr(0, close + 1);
        const auto after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("has something other than :port after the IPv6 address");
            port = after.substr(1);
        }
        if (!is_bracketed_ipv6(host)) return fail("has " + single_quoted(host) + ", which is not an IPv6 address");
    } else {
        const auto colon = rest.rfind(':');
        if (colon != std::string_view::npos) {
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
        }
        if (!is_host_name(host)) return fail("has no host name or address (letters, digits, '.' and '-')");
    }
    if (!port.empty() || rest.ends_with(":")) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
            return fail("has port " + single_quoted(port) + ", which is not 1..65535");
        }
        out.port = static_cast<std::uint16_t>(value);
    }
    out.host = std::string(host);
    return out;
}

ClusterSettings read_cluster(const toml::table& table) {
    ConfigReader read(table, "cluster");
    ClusterSettings cluster;
    cluster.name = read.get<std::string>("name", cluster.name);
    if (!is_dns_label(cluster.name)) {
        throw read.error("name", "must be a DNS label (lower-case letters, digits and '-', at most 63, e.g. "
                                 "\"prod-eu\"), not " + single_quoted(cluster.name));
    }
    const auto id = read.get<std::int64_t>("id", cluster.id);
    if (id < kMinClusterId || id > kMaxClusterId) {
        throw read.error("id", "must be between 1 and 255 (it is the top byte of the cluster's identity numbers), "
                               "not " + std::to_string(id));
    }
    cluster.id = static_cast<std::uint32_t>(id);
    const auto grace = read.get<std::int64_t>("identity_gc_grace", cluster.identity_gc_grace.count());
    if (grace < kMinIdentityGrace || grace > kMaxIdentityGrace) {
        throw read.error("identity_gc_grace", "must be between 1 and 604800 (seconds an identity no node uses is kept), "
                                              "not " + std::to_string(grace));
    }
    cluster.identity_gc_grace = std::chrono::seconds(grace);
    cluster.pod_cidr_pool = read.get<std::string>("pod_cidr_pool", "");
    const auto size = read.get<std::int64_t>("pod_cidr_size", cluster.pod_cidr_size);
    if (!cluster.pod_cidr_pool.empty()) {
        std::string problem;
        const auto pool = parse_ipv4_cidr(cluster.pod_cidr_pool, &problem);
        if (!pool) throw read.error("pod_cidr_pool", single_quoted(cluster.pod_cidr_pool) + " " + problem);
        if (size < pool->prefix_len || size > 29) {
            throw read.error("pod_cidr_size", "must be between the pool's prefix length (" +
                                                  std::to_string(pool->prefix_len) +
                                                  ") and 29 (a node's block needs room for a gateway and pods), not " +
                                                  std::to_string(size));
        }
    } else if (size < 8 || size > 29) {
        throw read.error("pod_cidr_size", "must be between 8 and 29, not " + std::to_string(size));
    }
    cluster.pod_cidr_size = static_cast<std::uint32_t>(size);
    read.finish();
    return cluster;
}

KvstoreSettings read_kvstore(const toml::table& table) {
    ConfigReader read(table, "kvstore");
    KvstoreSettings kv;
    if (!table.contains("endpoints")) {
        throw ConfigError(source_position(table.source()) + ": [kvstore] is missing the required key 'endpoints'");
    }
    kv.endpoints = read.strings("endpoints");
    const toml::array* items = table.get_as<toml::array>("endpoints");
    if (kv.endpoints.empty()) throw read.error("endpoints", "must list at least one etcd URL, e.g. [\"https://10.0.0.1:2379\"]");
    std::set<std::string> seen;
    std::optional<bool> tls;
    for (std::size_t i = 0; i < kv.endpoints.size(); ++i) {
        const std::string& url = kv.endpoints[i];
        std::string problem;
        const auto parsed = parse_endpoint_url(url, &problem);
        if (!parsed) throw read.error_at(*items->get(i), "endpoints", "has " + single_quoted(url) + ", which " + problem);
        if (!seen.insert(parsed->authority()).second) {
            throw read.error_at(*items->get(i), "endpoints", "lists " + single_quoted(url) + " twice");
        }
        if (tls && *tls != parsed->tls) {
            throw read.error_at(*items->get(i), "endpoints", "mixes http:// and https:// (" + single_quoted(url) +
                                                                 "): one TLS setting serves every endpoint");
        }
        tls = parsed->tls;
    }
    kv.ca = read_tls_file(read, "ca");
    kv.cert = read_tls_file(read, "cert");
    kv.key = read_tls_file(read, "key");
    if (*tls && kv.ca.empty()) {
        throw read.error("endpoints", "are https:// but [kvstore] has no 'ca' (the CA that signed etcd's certificate)");
    }
    if (!*tls) {
        for (const char* key : {"ca", "cert", "key"}) {
            if (table.contains(key)) {
                throw read.error(key, "is set but the endpoints are http://, which would send it nowhere; use https://");
            }
        }
    }
    if (kv.cert.empty() != kv.key.empty()) {
        throw read.error(kv.cert.empty() ? "key" : "cert",
                         "needs its partner: 'cert' and 'key' are the client certificate and its key, set both");
    }
    const auto ttl = read.get<std::int64_t>("lease_ttl", kv.lease_ttl);
    if (ttl < kMinLeaseTtl || ttl > kMaxLeaseTtl) {
        throw read.error("lease_ttl", "must be between 5 and 3600 (seconds a node's keys outlive its agent), not " +
                                          std::to_string(ttl));
    }
    kv.lease_ttl = static_cast<std::uint32_t>(ttl);
    kv.dial_timeout = read_timeout(read, "dial_timeout", kv.dial_timeout);
    kv.request_timeout = read_timeout(read, "request_timeout", kv.request_timeout);
    read.finish();
    return kv;
}

}  // namespace membrane::kernel
