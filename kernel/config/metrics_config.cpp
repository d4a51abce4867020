#include "config/metrics_config.hpp"

#include <charconv>

#include "config/ipv4.hpp"
#include "config/quoting.hpp"
#include "membrane/config.hpp"

namespace membrane::kernel {

std::string ListenAddress::str() const { return format_ipv4(ipv4) + ":" + std::to_string(port); }

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* problem) {
    auto fail = [&](std::string why) -> std::optional<ListenAddress> {
        if (problem) *problem = std::move(why);
        return std::nullopt;
    };
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return fail(parse_ipv4(text) ? "the port is missing"
                                     : "it is not an IPv4 address and port (host names are not resolved)");
    }
    const auto host = text.substr(0, colon);
    const auto ipv4 = parse_ipv4(host);
    if (!ipv4) return fail(single_quoted(host) + " is not an IPv4 address (host names are not resolved)");
    const auto port_text = text.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535 || port_text.front() == '0') {
        return fail("port " + single_quoted(port_text) + " is not 1..65535");
    }
    return ListenAddress{*ipv4, static_cast<std::uint16_t>(port)};
}

MetricsSettings read_metrics(const toml::table& table) {
    ConfigReader read(table, "metrics");
    MetricsSettings metrics;
    metrics.address = read.get<std::string>("address", metrics.address);
    std::string problem;
    const auto address = parse_listen_address(metrics.address, &problem);
    if (!address) {
        throw read.error("address", "must be \"IPv4:port\" such as \"127.0.0.1:9962\", not " +
                                        single_quoted(metrics.address) + ": " + problem);
    }
    // One spelling (the parser refuses leading zeros, so this is the text).
    metrics.address = address->str();
    read.finish();
    return metrics;
}

}  // namespace membrane::kernel
