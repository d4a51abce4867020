#include "utf8.hpp"

#include <cstdint>
#include <cstdio>

namespace membrane::cni {
namespace {

// The length of the valid sequence starting at text[at], or 0 when the byte
// there does not start one (RFC 3629 table 3-7: no overlongs, no surrogates).
std::size_t sequence_length(std::string_view text, std::size_t at) {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[at + i]); };
    const std::size_t left = text.size() - at;
    const std::uint8_t b0 = byte(0);
    if (b0 < 0x80) return 1;
    std::size_t length;
    std::uint8_t low = 0x80, high = 0xbf;  // the range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        length = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        length = 3;
        if (b0 == 0xe0) low = 0xa0;
        if (b0 == 0xed) high = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        length = 4;
        if (b0 == 0xf0) low = 0x90;
        if (b0 == 0xf4) high = 0x8f;
    } else {
        return 0;
    }
    if (left < length || byte(1) < low || byte(1) > high) return 0;
    for (std::size_t i = 2; i < length; ++i)
        if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
    return length;
}

std::string hex_byte(char c) {
    char out[8];
    std::snprintf(out, sizeof out, "0x%02x", static_cast<unsigned>(static_cast<std::uint8_t>(c)));
    return out;
}

}  // namespace

std::optional<std::size_t> first_invalid_utf8(std::string_view text) {
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t length = sequence_length(text, at);
        if (length == 0) return at;
        at += length;
    }
    return std::nullopt;
}

std::string invalid_utf8_problem(std::string_view text) {
    const auto at = first_invalid_utf8(text);
    if (!at) return {};
    return "byte " + hex_byte(text[*at]) + " at offset " + std::to_string(*at);
}

std::string replace_invalid_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t length = sequence_length(text, at);
        if (length == 0) {
            out += "\xef\xbf\xbd";
            ++at;
        } else {
            out.append(text.substr(at, length));
            at += length;
        }
    }
    return out;
}

std::string describe_char(char c) {
    if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
    return "byte " + hex_byte(c);
}

}  // namespace membrane::cni
