#include "config/ipv4.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace membrane::kernel {

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
    // inet_pton(AF_INET) takes exactly a dotted quad and refuses leading zeros.
    if (text.empty() || text.size() > 15) return std::nullopt;
    const std::string copy(text);
    in_addr address{};
    if (::inet_pton(AF_INET, copy.c_str(), &address) != 1) return std::nullopt;
    return ntohl(address.s_addr);
}

std::string format_ipv4(std::uint32_t address) {
    return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
           std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

std::string Ipv4Cidr::str() const { return format_ipv4(network) + "/" + std::to_string(prefix_len); }

std::optional<Ipv4Cidr> parse_ipv4_cidr(std::string_view text, std::string* problem) {
    auto fail = [&](std::string why) -> std::optional<Ipv4Cidr> {
        if (problem) *problem = std::move(why);
        return std::nullopt;
    };
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return fail("is not a CIDR (address/prefix length, e.g. \"10.10.1.0/24\")");
    const auto address = parse_ipv4(text.substr(0, slash));
    if (!address) return fail("does not start with an IPv4 address (e.g. \"10.10.1.0/24\")");
    const auto length_text = text.substr(slash + 1);
    unsigned length = 0;
    const auto [end, ec] = std::from_chars(length_text.data(), length_text.data() + length_text.size(), length);
    if (length_text.empty() || ec != std::errc() || end != length_text.data() + length_text.size() || length > 32 ||
        (length_text.size() > 1 && length_text.front() == '0')) {
        return fail("has no prefix length between 0 and 32");
    }
    Ipv4Cidr cidr{*address, static_cast<std::uint8_t>(length)};
    if ((cidr.network & ~cidr.mask()) != 0) {
        Ipv4Cidr meant{cidr.network & cidr.mask(), cidr.prefix_len};
        return fail("has host bits set (did you mean \"" + meant.str() + "\"?)");
    }
    return cidr;
}

}  // namespace membrane::kernel
