// IPv4 addresses between their text and the maps' network-order words.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>

#include <membrane/bpf.hpp>

namespace membrane::service_lb {

// Throws membrane::BpfError for text that is not an IPv4 address.
inline std::uint32_t ipv4_address(const std::string& text) {
    in_addr address{};
    if (inet_pton(AF_INET, text.c_str(), &address) != 1) throw BpfError("not an IPv4 address: " + text);
    return address.s_addr;
}

inline std::string ipv4_text(std::uint32_t address) {
    char text[INET_ADDRSTRLEN] = {};
    const in_addr in{.s_addr = address};
    inet_ntop(AF_INET, &in, text, sizeof(text));
    return text;
}

}  // namespace membrane::service_lb
