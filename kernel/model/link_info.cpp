#include "model/link_info.hpp"

#include <fcntl.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bpf/unique_fd.hpp"

namespace membrane::kernel {

std::uint32_t interface_index(const std::string& ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ) return 0;
    return ::if_nametoindex(ifname.c_str());
}

namespace {

// One rtnetlink request and its one reply (a message or an error).
struct NetlinkReply {
    int error = 0;  // errno, 0 on success
    std::vector<char> message;
};

NetlinkReply netlink_request(std::vector<char> request) {
    const UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return {errno, {}};
    auto* header = reinterpret_cast<nlmsghdr*>(request.data());
    header->nlmsg_len = static_cast<std::uint32_t>(request.size());
    header->nlmsg_flags = NLM_F_REQUEST;
    header->nlmsg_seq = 1;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd.get(), request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
        return {errno, {}};
    }
    std::vector<char> buffer(32768);
    const ssize_t got = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    if (got < 0) return {errno, {}};
    const auto* reply = reinterpret_cast<const nlmsghdr*>(buffer.data());
    if (!NLMSG_OK(reply, static_cast<std::uint32_t>(got))) return {EBADMSG, {}};
    if (reply->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(reply));
        return {error->error == 0 ? EBADMSG : -error->error, {}};
    }
    buffer.resize(reply->nlmsg_len);
    return {0, std::move(buffer)};
}

void add_attribute(std::vector<char>& message, std::uint16_t type, const void* data, std::size_t size) {
    const std::size_t at = NLMSG_ALIGN(message.size());
    message.resize(at + RTA_SPACE(size));
    auto* attribute = reinterpret_cast<rtattr*>(message.data() + at);
    attribute->rta_type = type;
    attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
    std::memcpy(RTA_DATA(attribute), data, size);
}

// The s32 attribute `type` of a reply whose payload (of `payload_size`
// bytes) is followed by attributes; nullopt if absent.
std::optional<std::int32_t> s32_attribute(const std::vector<char>& message, std::size_t payload_size,
                                          std::uint16_t type) {
    const auto* header = reinterpret_cast<const nlmsghdr*>(message.data());
    // Attributes start at the aligned end of the payload (rtgenmsg is 1 byte).
    auto* attribute = reinterpret_cast<rtattr*>(const_cast<char*>(message.data()) + NLMSG_SPACE(payload_size));
    int left = static_cast<int>(header->nlmsg_len) - static_cast<int>(NLMSG_SPACE(payload_size));
    for (; RTA_OK(attribute, left); attribute = RTA_NEXT(attribute, left)) {
        if (attribute->rta_type == type && RTA_PAYLOAD(attribute) >= sizeof(std::int32_t)) {
            std::int32_t value = 0;
            std::memcpy(&value, RTA_DATA(attribute), sizeof value);
            return value;
        }
    }
    return std::nullopt;
}

bool same_namespace_as_ours(int netns_fd) {
    struct stat ours {};
    struct stat theirs {};
    return ::stat("/proc/thread-self/ns/net", &ours) == 0 && ::fstat(netns_fd, &theirs) == 0 &&
           ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino;
}

}  // namespace

std::optional<std::string> veth_peer_outside(const std::string& host_ifname, const std::string& netns_path) {
    // The link: has it a peer (IFLA_LINK), and in which namespace?
    std::vector<char> link_request(NLMSG_LENGTH(sizeof(ifinfomsg)));
    reinterpret_cast<nlmsghdr*>(link_request.data())->nlmsg_type = RTM_GETLINK;
    reinterpret_cast<ifinfomsg*>(NLMSG_DATA(link_request.data()))->ifi_family = AF_UNSPEC;
    add_attribute(link_request, IFLA_IFNAME, host_ifname.c_str(), host_ifname.size() + 1);
    const NetlinkReply link = netlink_request(std::move(link_request));
    if (link.error != 0) return "cannot read link " + host_ifname + ": " + std::strerror(link.error);
    if (!s32_attribute(link.message, sizeof(ifinfomsg), IFLA_LINK)) return host_ifname + " has no veth peer";
    const auto peer_nsid = s32_attribute(link.message, sizeof(ifinfomsg), IFLA_LINK_NETNSID);

    const UniqueFd netns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!netns) return "its network namespace " + netns_path + " is gone (" + std::strerror(errno) + ")";
    if (!peer_nsid) {
        // The peer is in our own namespace: fine only if that is the pod's.
        if (same_namespace_as_ours(netns.get())) return std::nullopt;
        return "the peer of " + host_ifname + " is in the agent's network namespace, not in " + netns_path;
    }
    std::vector<char> nsid_request(NLMSG_LENGTH(sizeof(rtgenmsg)));
    reinterpret_cast<nlmsghdr*>(nsid_request.data())->nlmsg_type = RTM_GETNSID;
    reinterpret_cast<rtgenmsg*>(NLMSG_DATA(nsid_request.data()))->rtgen_family = AF_UNSPEC;
    const std::uint32_t fd = static_cast<std::uint32_t>(netns.get());
    add_attribute(nsid_request, NETNSA_FD, &fd, sizeof fd);
    const NetlinkReply nsid = netlink_request(std::move(nsid_request));
    if (nsid.error != 0) return "cannot read the id of " + netns_path + ": " + std::strerror(nsid.error);
    const auto pod_nsid = s32_attribute(nsid.message, sizeof(rtgenmsg), NETNSA_NSID);
    if (pod_nsid && *pod_nsid == *peer_nsid) return std::nullopt;
    return "the peer of " + host_ifname + " is not in " + netns_path + " (namespace id " + std::to_string(*peer_nsid) +
           ", " + netns_path + " has " + (pod_nsid ? std::to_string(*pod_nsid) : std::string("none")) + ")";
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
