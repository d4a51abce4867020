#include "model/link_info.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "bpf/unique_fd.hpp"

namespace membrane::kernel {

std::uint32_t interface_index(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) return 0;
    return ::if_nametoindex(ifname.c_str());
}

std::optional<MacAddress> interface_mac(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) return std::nullopt;
    const UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return std::nullopt;
    ifreq request{};
    std::memcpy(request.ifr_name, ifname.c_str(), ifname.size());
    if (::ioctl(fd.get(), SIOCGIFHWADDR, &request) != 0) return std::nullopt;
    MacAddress mac{};
    std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, mac.size());
    return mac;
}

std::optional<MacAddress> parse_mac(std::string_view text) {
    if (text.size() != 17) return std::nullopt;
    MacAddress mac{};
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < mac.size(); ++i) {
        const int high = hex(text[i * 3]);
        const int low = hex(text[i * 3 + 1]);
        if (high < 0 || low < 0 || (i < 5 && text[i * 3 + 2] != ':')) return std::nullopt;
        mac[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    return mac;
}

std::string format_mac(const MacAddress& mac) {
    char text[18];
    std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    return text;
}

}  // namespace membrane::kernel
