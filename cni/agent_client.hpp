// membrane-cni's side of org.membrane.Agent1: the endpoint methods, through
// the proxy generated from dbus/org.membrane.Agent1.xml. An agent that
// cannot be reached, or answers Unavailable (it needs the cluster store,
// which is away), is TryAgainLater (11); any other error the agent answers
// is AgentRefused (100) carrying its D-Bus error name and message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cni_args.hpp"

namespace sdbus {
class IConnection;
}

namespace membrane::cni {

struct Lease {
    std::string ipv4;
    std::uint8_t prefix_len = 32;
    std::string gateway;
    std::string pod_cidr;
    std::uint32_t mtu = 1500;
};

struct EndpointRequest {
    std::string container_id, ifname, netns, host_ifname, ipv4, mac;
    Labels labels;
    std::map<std::string, std::string> ports;  // named container ports: name -> "80/TCP"
};

struct Endpoint {
    std::uint64_t id = 0;
    std::string container_id, ifname, netns, host_ifname;
    std::uint32_t host_ifindex = 0;
    std::string ipv4, mac;
    Labels labels;
    std::uint32_t identity = 0;
    std::string state;
};

class AgentClient {
public:
    // `bus`: "system", "session" or a D-Bus address.
    explicit AgentClient(std::string bus);
    ~AgentClient();

    // The MTU pods get on this node now ([agent] mtu minus the encapsulation).
    std::uint32_t pod_mtu();
    Lease allocate_address(const std::string& container_id, const std::string& ifname);
    void release_address(const std::string& container_id, const std::string& ifname);
    Endpoint create_endpoint(const EndpointRequest& request);
    void delete_endpoint(const std::string& container_id, const std::string& ifname);
    // nullopt when the agent has none (org.membrane.Error.NotFound).
    std::optional<Endpoint> find_endpoint(const std::string& container_id, const std::string& ifname);

private:
    template <class Call>
    auto attempt(const std::string& what, Call&& call);

    std::string bus_;
    std::unique_ptr<sdbus::IConnection> connection_;
};

}  // namespace membrane::cni
