// Hand-made Ethernet frames sent from inside a pod (an AF_PACKET socket on
// its eth0), for what the pod's own stack would never send: another pod's
// address or MAC, an ARP with a borrowed sender, IPv6 or VLAN-tagged frames.
#pragma once

#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pod_lab.hpp"
#include "sandbox.hpp"

namespace membrane::kernel::test {

using Mac = std::array<std::uint8_t, 6>;
using Frame = std::vector<std::uint8_t>;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;

namespace frame_detail {

inline void put16(Frame& frame, std::uint16_t value) {
    frame.push_back(static_cast<std::uint8_t>(value >> 8));
    frame.push_back(static_cast<std::uint8_t>(value));
}
inline void put_mac(Frame& frame, const Mac& mac) { frame.insert(frame.end(), mac.begin(), mac.end()); }
// An address as ipv4_be() gives it: network order in memory.
inline void put_ipv4(Frame& frame, std::uint32_t network_order) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(&network_order);
    frame.insert(frame.end(), bytes, bytes + 4);
}
// The Internet checksum of frame[from, from + length), stored big-endian at frame[at].
inline void put_checksum(Frame& frame, std::size_t from, std::size_t length, std::size_t at) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < length; i += 2) {
        sum += static_cast<std::uint32_t>(frame[from + i] << 8) + (i + 1 < length ? frame[from + i + 1] : 0);
    }
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    const auto checksum = static_cast<std::uint16_t>(~sum);
    frame[at] = static_cast<std::uint8_t>(checksum >> 8);
    frame[at + 1] = static_cast<std::uint8_t>(checksum);
}

}  // namespace frame_detail

inline Frame ethernet(const Mac& to, const Mac& from, std::uint16_t type) {
    Frame frame;
    frame_detail::put_mac(frame, to);
    frame_detail::put_mac(frame, from);
    frame_detail::put16(frame, type);
    return frame;
}

// A valid ICMP echo request from `source` to `destination` (dotted quads).
inline Frame icmp_echo(const Mac& to, const Mac& from, const std::string& source, const std::string& destination) {
    using namespace frame_detail;
    Frame frame = ethernet(to, from, kEtherIpv4);
    const std::size_t ip = frame.size();
    constexpr std::uint16_t kIcmpLength = 8 + 8;
    put16(frame, 0x4500);                 // version 4, 20-byte header, TOS 0
    put16(frame, 20 + kIcmpLength);       // total length
    put16(frame, 0x1234);                 // id
    put16(frame, 0x4000);                 // don't fragment
    put16(frame, 0x4001);                 // TTL 64, ICMP
    put16(frame, 0);                      // checksum, below
    put_ipv4(frame, ipv4_be(source));
    put_ipv4(frame, ipv4_be(destination));
    put_checksum(frame, ip, 20, ip + 10);
    const std::size_t icmp = frame.size();
    put16(frame, 0x0800);  // echo request, code 0
    put16(frame, 0);       // checksum, below
    put16(frame, 0x4d42);  // identifier
    put16(frame, 1);       // sequence
    for (int i = 0; i < 8; ++i) frame.push_back(static_cast<std::uint8_t>(i));
    put_checksum(frame, icmp, kIcmpLength, icmp + 2);
    return frame;
}

// An ARP request "who has target_ip, tell sender_ip (at sender_mac)", sent from eth_source.
inline Frame arp_request(const Mac& eth_source, const Mac& sender_mac, const std::string& sender_ip,
                         const std::string& target_ip) {
    using namespace frame_detail;
    Frame frame = ethernet(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, eth_source, kEtherArp);
    put16(frame, 1);       // Ethernet
    put16(frame, kEtherIpv4);
    frame.push_back(6);
    frame.push_back(4);
    put16(frame, 1);       // request
    put_mac(frame, sender_mac);
    put_ipv4(frame, ipv4_be(sender_ip));
    put_mac(frame, Mac{});
    put_ipv4(frame, ipv4_be(target_ip));
    return frame;
}

// An IPv6 frame: a header with no next header (59) to the all-nodes group.
inline Frame ipv6_frame(const Mac& to, const Mac& from) {
    using namespace frame_detail;
    Frame frame = ethernet(to, from, kEtherIpv6);
    put16(frame, 0x6000);
    put16(frame, 0);
    put16(frame, 0);   // payload length
    frame.push_back(59);
    frame.push_back(255);
    const std::array<std::uint8_t, 16> link_local{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::array<std::uint8_t, 16> all_nodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    frame.insert(frame.end(), link_local.begin(), link_local.end());
    frame.insert(frame.end(), all_nodes.begin(), all_nodes.end());
    return frame;
}

// `inner` (an Ethernet frame) with an 802.1Q tag of VLAN `vlan` after its MACs.
inline Frame vlan_tagged(const Frame& inner, std::uint16_t vlan) {
    Frame frame(inner.begin(), inner.begin() + 12);
    frame_detail::put16(frame, kEtherVlan);
    frame_detail::put16(frame, vlan);
    frame.insert(frame.end(), inner.begin() + 12, inner.end());
    return frame;
}

// Sends `frame` as is, `times` times, out of the pod's eth0.
inline void send_from_pod(const Pod& pod, const Frame& frame, int times = 1) {
    EnterNetns inside(pod.netns);
    const UniqueFd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));  // protocol 0: send only
    if (!sock) throw std::runtime_error("cannot open a packet socket in " + pod.netns);
    sockaddr_ll where{};
    where.sll_family = AF_PACKET;
    where.sll_ifindex = static_cast<int>(::if_nametoindex("eth0"));
    where.sll_halen = 6;
    std::copy(frame.begin(), frame.begin() + 6, where.sll_addr);
    for (int i = 0; i < times; ++i) {
        if (::sendto(sock.get(), frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&where),
                     sizeof where) != static_cast<ssize_t>(frame.size()))
            throw std::runtime_error("cannot send a frame from " + pod.netns);
    }
}

}  // namespace membrane::kernel::test
