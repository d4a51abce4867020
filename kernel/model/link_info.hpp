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

// "aa:bb:cc:dd:ee:ff" (either case) -> bytes; nullopt otherwise.
std::optional<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);  // lower case

}  // namespace membrane::kernel
