// What the model reads of a network interface in the agent's namespace, and
// MAC addresses as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace membrane::kernel {

using MacAddress = std::array<std::uint8_t, 6>;

// 0 when there is no such interface.
std::uint32_t interface_index(const std::string& ifname);
// The interface's hardware address (SIOCGIFHWADDR); nullopt if it is gone.
std::optional<MacAddress> interface_mac(const std::string& ifname);

// Why the veth `host_ifname` (in the calling thread's namespace) does not
// lead into the network namespace at `netns_path` (a CNI_NETNS path):
// nullopt when its peer is there. Asks the kernel over rtnetlink: the link's
// peer namespace id (IFLA_LINK_NETNSID) against the id of `netns_path`'s
// namespace (RTM_GETNSID), or, for a peer in our own namespace, the inodes.
std::optional<std::string> veth_peer_outside(const std::string& host_ifname, const std::string& netns_path);

// "aa:bb:cc:dd:ee:ff" (either case) -> bytes; nullopt otherwise.
std::optional<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);  // lower case

}  // namespace membrane::kernel
