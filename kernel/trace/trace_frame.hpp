// The one packet a datapath trace runs (membranectl policy trace): an
// Ethernet frame with an IPv4 header and the first segment of what the user
// asked about (a TCP SYN, a UDP datagram, an ICMP echo request), every
// checksum right, so each stage reads it as it would read the real thing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace membrane::kernel {

struct TraceFrameSpec {
    std::array<std::uint8_t, 6> source_mac{};
    std::array<std::uint8_t, 6> destination_mac{};
    std::uint32_t source_ip = 0;  // host order
    std::uint32_t destination_ip = 0;
    std::uint8_t protocol = 6;           // IPPROTO_TCP, IPPROTO_UDP or IPPROTO_ICMP
    std::uint16_t source_port = 0;       // ICMP: the echo identifier
    std::uint16_t destination_port = 0;  // ICMP: unused
    std::uint8_t ttl = 64;
};

// Throws std::invalid_argument for another protocol.
std::vector<std::byte> build_trace_frame(const TraceFrameSpec& spec);

}  // namespace membrane::kernel
