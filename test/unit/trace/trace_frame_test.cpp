// The trace packet: what every stage parses, with checksums a kernel accepts.
#include <gtest/gtest.h>

#include <stdexcept>

#include "config/ipv4.hpp"
#include "trace/trace_frame.hpp"

namespace membrane::kernel::test {
namespace {

std::uint16_t at16(const std::vector<std::byte>& frame, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned>(frame[at]) << 8) | static_cast<unsigned>(frame[at + 1]));
}

// The one's complement sum over a range (with `extra` added): 0xffff when its checksum is right.
std::uint16_t ones_sum(const std::vector<std::byte>& frame, std::size_t from, std::size_t length, std::uint32_t extra = 0) {
    std::uint32_t sum = extra;
    for (std::size_t i = 0; i < length; i += 2) sum += at16(frame, from + i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

TraceFrameSpec spec(std::uint8_t protocol) {
    return {.source_mac = {2, 0, 0, 0, 0, 2},
            .destination_mac = {2, 0, 0, 0, 0, 1},
            .source_ip = *parse_ipv4("10.1.1.2"),
            .destination_ip = *parse_ipv4("10.1.2.3"),
            .protocol = protocol,
            .source_port = 43210,
            .destination_port = 80};
}

std::uint32_t pseudo(const TraceFrameSpec& s, std::size_t length) {
    return (s.source_ip >> 16) + (s.source_ip & 0xffff) + (s.destination_ip >> 16) + (s.destination_ip & 0xffff) +
           s.protocol + static_cast<std::uint32_t>(length);
}

TEST(TraceFrameTest, ATcpSynWithEveryChecksumRight) {
    const auto s = spec(6);
    const auto frame = build_trace_frame(s);
    ASSERT_EQ(frame.size(), 14u + 20u + 20u);
    EXPECT_EQ(at16(frame, 12), 0x0800);
    EXPECT_EQ(static_cast<unsigned>(frame[0]), 2u);
    EXPECT_EQ(static_cast<unsigned>(frame[5]), 1u);
    EXPECT_EQ(static_cast<unsigned>(frame[11]), 2u);
    EXPECT_EQ(at16(frame, 14 + 2), 40);  // total length
    EXPECT_EQ(static_cast<unsigned>(frame[14 + 8]), 64u);  // TTL
    EXPECT_EQ(ones_sum(frame, 14, 20), 0xffff);
    EXPECT_EQ(at16(frame, 34), 43210);
    EXPECT_EQ(at16(frame, 36), 80);
    EXPECT_EQ(static_cast<unsigned>(frame[34 + 13]), 0x02u);  // SYN alone
    EXPECT_EQ(ones_sum(frame, 34, 20, pseudo(s, 20)), 0xffff);
}

TEST(TraceFrameTest, AUdpDatagramAndAnEchoRequest) {
    const auto u = spec(17);
    const auto udp = build_trace_frame(u);
    ASSERT_EQ(udp.size(), 14u + 20u + 8u);
    EXPECT_EQ(at16(udp, 38), 8);  // UDP length
    EXPECT_EQ(ones_sum(udp, 34, 8, pseudo(u, 8)), 0xffff);

    const auto echo = build_trace_frame(spec(1));
    ASSERT_EQ(echo.size(), 14u + 20u + 8u);
    EXPECT_EQ(static_cast<unsigned>(echo[34]), 8u);  // echo request
    EXPECT_EQ(at16(echo, 38), 43210);                // the identifier
    EXPECT_EQ(ones_sum(echo, 34, 8), 0xffff);
}

TEST(TraceFrameTest, AnotherProtocolIsRefused) {
    EXPECT_THROW(build_trace_frame(spec(47)), std::invalid_argument);
}

}  // namespace
}  // namespace membrane::kernel::test
