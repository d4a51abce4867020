// IPv4 addresses and prefixes as the config and the model use them: parsed
// strictly (dotted quad, no leading zeros), kept in host byte order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace membrane::kernel {

// "10.10.1.5" -> 0x0a0a0105; nullopt for anything else.
std::optional<std::uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(std::uint32_t address);

struct Ipv4Cidr {
    std::uint32_t network = 0;  // host bits are zero
    std::uint8_t prefix_len = 0;

    std::uint32_t mask() const { return prefix_len == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix_len); }
    std::uint32_t broadcast() const { return network | ~mask(); }
    bool contains(std::uint32_t address) const { return (address & mask()) == network; }
    bool overlaps(const Ipv4Cidr& other) const { return contains(other.network) || other.contains(network); }
    std::string str() const;

    auto operator<=>(const Ipv4Cidr&) const = default;
};

// "10.10.1.0/24". On failure `problem` (if given) says why, e.g. that host
// bits are set ("10.10.1.5/24": did you mean 10.10.1.0/24?).
std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text, std::string* problem = nullptr);

}  // namespace membrane::kernel
