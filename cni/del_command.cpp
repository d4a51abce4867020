// DEL: idempotent. The endpoint, the lease, the host veth (its peer goes
// with it) and the node's route to the pod; whatever is already gone is fine.
#include <linux/rtnetlink.h>

#include <optional>

#include "agent_client.hpp"
#include "cni_error.hpp"
#include "commands.hpp"
#include "host_veth_name.hpp"
#include "netlink.hpp"

namespace membrane::cni {

void del(const Invocation& in) {
    const Environment& env = in.env;
    std::optional<CniError> agent_failure;
    std::optional<Endpoint> endpoint;
    try {
        AgentClient agent(in.config.dbus_address);
        endpoint = agent.find_endpoint(env.container_id, env.ifname);
        agent.delete_endpoint(env.container_id, env.ifname);  // releases the address
        // A lease without an endpoint (an ADD that died between the two).
        agent.release_address(env.container_id, env.ifname);
    } catch (const CniError& e) {
        agent_failure = e;  // still remove the link: the agent cannot use it any more
    }

    // Only a link of our derived name is ours; in chained mode it never exists
    // and the other plugin removes its own veth.
    const std::string host_name = host_veth_name(env.container_id, env.ifname);
    Netlink host;
    if (const auto link = host.find_link(host_name)) {
        if (endpoint && !endpoint->ipv4.empty()) host.delete_route(link->ifindex, endpoint->ipv4 + "/32", RT_SCOPE_LINK);
        host.delete_link(host_name);
    }
    if (agent_failure) throw *agent_failure;
}

}  // namespace membrane::cni
