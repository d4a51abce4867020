// The rtnetlink operations membrane-cni needs, through libnl-route-3. A
// Netlink talks to the network namespace of the thread that made it.
// Failures throw CniError InterfaceSetup (101) naming the object.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct nl_sock;

namespace membrane::cni {

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::string mac;  // "aa:bb:cc:dd:ee:ff"
    std::uint32_t mtu = 0;
    bool up = false;        // IFF_UP
    std::string kind;       // "veth", "bridge"... ("" for a plain device)
    int peer_ifindex = 0;   // IFLA_LINK: a veth's peer (in the peer's namespace)
};

struct RouteInfo {
    std::string dst;      // "0.0.0.0/0", "10.10.1.1/32"
    std::string gateway;  // "" for a link route
    int oif = 0;
    std::uint8_t scope = 0;  // RT_SCOPE_*
};

class Netlink {
public:
    Netlink();  // connects a NETLINK_ROUTE socket in the current namespace
    ~Netlink();
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;

    std::optional<LinkInfo> find_link(const std::string& name);
    std::optional<LinkInfo> find_link(int ifindex);

    // host_name here, peer_name created directly inside the namespace of
    // peer_netns_fd (so a name taken on the host never collides), both with mtu.
    void create_veth(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                     std::uint32_t mtu);
    // false when there was no such link.
    bool delete_link(const std::string& name);
    void set_up(const LinkInfo& link);
    void set_mtu(const LinkInfo& link, std::uint32_t mtu);

    void add_ipv4_address(int ifindex, const std::string& cidr);
    // Main table, IPv4. gateway "" makes a link route.
    void add_route(int ifindex, const std::string& dst_cidr, const std::string& gateway, std::uint8_t scope);
    // false when there was no such route.
    bool delete_route(int ifindex, const std::string& dst_cidr, std::uint8_t scope);

    std::vector<std::string> ipv4_addresses(int ifindex);  // CIDRs
    std::vector<RouteInfo> ipv4_routes();                  // main table

private:
    nl_sock* sock_ = nullptr;
};

}  // namespace membrane::cni
