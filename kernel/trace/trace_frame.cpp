#include "trace/trace_frame.hpp"

#include <stdexcept>
#include <string>

namespace membrane::kernel {
namespace {

constexpr std::size_t kEthernetBytes = 14;
constexpr std::size_t kIpv4Bytes = 20;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kIcmp = 1;

void put16(std::vector<std::byte>& out, std::size_t at, std::uint16_t value) {
    out[at] = std::byte(value >> 8);
    out[at + 1] = std::byte(value & 0xff);
}

void put32(std::vector<std::byte>& out, std::size_t at, std::uint32_t value) {
    put16(out, at, static_cast<std::uint16_t>(value >> 16));
    put16(out, at + 2, static_cast<std::uint16_t>(value & 0xffff));
}

// RFC 1071: the one's complement of the one's complement sum of 16-bit words.
std::uint32_t sum_words(const std::vector<std::byte>& bytes, std::size_t from, std::size_t length, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < length; i += 2) {
        sum += (static_cast<std::uint32_t>(bytes[from + i]) << 8) | static_cast<std::uint32_t>(bytes[from + i + 1]);
    }
    if (length % 2) sum += static_cast<std::uint32_t>(bytes[from + length - 1]) << 8;
    return sum;
}

std::uint16_t fold(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::size_t l4_bytes(std::uint8_t protocol) {
    switch (protocol) {
        case kTcp: return 20;
        case kUdp: return 8;
        case kIcmp: return 8;
        default: throw std::invalid_argument("a trace packet is TCP, UDP or ICMP, not IP protocol " + std::to_string(protocol));
    }
}

}  // namespace

std::vector<std::byte> build_trace_frame(const TraceFrameSpec& spec) {
    const std::size_t l4 = l4_bytes(spec.protocol);
    std::vector<std::byte> frame(kEthernetBytes + kIpv4Bytes + l4, std::byte{0});
    for (std::size_t i = 0; i < 6; ++i) {
        frame[i] = std::byte(spec.destination_mac[i]);
        frame[6 + i] = std::byte(spec.source_mac[i]);
    }
    put16(frame, 12, 0x0800);

    const std::size_t ip = kEthernetBytes;
    frame[ip] = std::byte{0x45};
    put16(frame, ip + 2, static_cast<std::uint16_t>(kIpv4Bytes + l4));
    put16(frame, ip + 6, 0x4000);  // DF, as a TCP stack sends
    frame[ip + 8] = std::byte(spec.ttl);
    frame[ip + 9] = std::byte(spec.protocol);
    put32(frame, ip + 12, spec.source_ip);
    put32(frame, ip + 16, spec.destination_ip);
    put16(frame, ip + 10, fold(sum_words(frame, ip, kIpv4Bytes)));

    const std::size_t at = ip + kIpv4Bytes;
    std::uint32_t pseudo = 0;
    switch (spec.protocol) {
        case kTcp:
            put16(frame, at, spec.source_port);
            put16(frame, at + 2, spec.destination_port);
            put32(frame, at + 4, 1);  // sequence number
            frame[at + 12] = std::byte{0x50};  // 5 words, no options
            frame[at + 13] = std::byte{0x02};  // SYN
            put16(frame, at + 14, 64240);      // window
            break;
        case kUdp:
            put16(frame, at, spec.source_port);
            put16(frame, at + 2, spec.destination_port);
            put16(frame, at + 4, static_cast<std::uint16_t>(l4));
            break;
        case kIcmp:
            frame[at] = std::byte{8};  // echo request
            put16(frame, at + 4, spec.source_port);
            put16(frame, at + 6, 1);  // sequence
            break;
    }
    if (spec.protocol == kIcmp) {
        put16(frame, at + 2, fold(sum_words(frame, at, l4)));
    } else {
        // The pseudo-header: addresses, protocol and length, then the segment.
        pseudo = (spec.source_ip >> 16) + (spec.source_ip & 0xffff) + (spec.destination_ip >> 16) +
                 (spec.destination_ip & 0xffff) + spec.protocol + static_cast<std::uint32_t>(l4);
        const std::uint16_t checksum = fold(sum_words(frame, at, l4, pseudo));
        put16(frame, at + (spec.protocol == kTcp ? 16 : 6), spec.protocol == kUdp && checksum == 0 ? 0xffff : checksum);
    }
    return frame;
}

}  // namespace membrane::kernel
