#include "agent_client.hpp"

#include <map>

#include <sdbus-c++/sdbus-c++.h>

#include "cni_error.hpp"
#include "membrane/dbus/agent_proxy.hpp"
#include "membrane/dbus/bus_spec.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::cni {
namespace {

using membrane::dbus::AgentProxy;

using Dict = std::map<std::string, sdbus::Variant>;

// The errors that mean "nobody answers there now": worth a retry.
bool is_unreachable(const std::string& name) {
    static const char* const kUnreachable[] = {
        "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",        "org.freedesktop.DBus.Error.Timeout",
        "org.freedesktop.DBus.Error.TimedOut",       "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.NoServer",       "org.freedesktop.DBus.Error.UnknownObject",
    };
    for (const char* n : kUnreachable)
        if (name == n) return true;
    return false;
}

template <class T>
T field(const Dict& dict, const char* key, const char* what) {
    const auto it = dict.find(key);
    if (it == dict.end())
        throw CniError(ErrorCode::AgentRefused, std::string("the agent's ") + what + " has no '" + key + "'");
    try {
        return it->second.get<T>();
    } catch (const sdbus::Error&) {
        throw CniError(ErrorCode::AgentRefused, std::string("the agent's ") + what + " has '" + key +
                                                    "' of type " + it->second.peekValueType());
    }
}

template <class T>
T field_or(const Dict& dict, const char* key, T fallback) {
    const auto it = dict.find(key);
    if (it == dict.end()) return fallback;
    try {
        return it->second.get<T>();
    } catch (const sdbus::Error&) {
        return fallback;
    }
}

Endpoint endpoint_of(const Dict& d) {
    Endpoint e;
    e.id = field<std::uint64_t>(d, "id", "endpoint");
    e.container_id = field_or<std::string>(d, "container_id", {});
    e.ifname = field_or<std::string>(d, "ifname", {});
    e.netns = field_or<std::string>(d, "netns", {});
    e.host_ifname = field_or<std::string>(d, "host_ifname", {});
    e.host_ifindex = field_or<std::uint32_t>(d, "host_ifindex", 0);
    e.ipv4 = field_or<std::string>(d, "address", {});
    e.mac = field_or<std::string>(d, "mac", {});
    e.labels = field_or<std::map<std::string, std::string>>(d, "labels", {});
    e.identity = field_or<std::uint32_t>(d, "identity", 0);
    e.state = field_or<std::string>(d, "state", {});
    return e;
}

}  // namespace

AgentClient::AgentClient(std::string bus) : bus_(std::move(bus)) {
    try {
        connection_ = membrane::dbus::open_bus(bus_);
    } catch (const sdbus::Error& e) {
        throw CniError(ErrorCode::TryAgainLater,
                       "the membrane agent is unreachable: cannot connect to " + membrane::dbus::describe_bus(bus_),
                       e.getName() + ": " + e.getMessage());
    }
}

AgentClient::~AgentClient() = default;

template <class Call>
auto AgentClient::attempt(const std::string& what, Call&& call) {
    try {
        return call();
    } catch (const sdbus::Error& e) {
        if (is_unreachable(e.getName()))
            throw CniError(ErrorCode::TryAgainLater,
                           "the membrane agent is unreachable on " + membrane::dbus::describe_bus(bus_) + " (" + what +
                               "): is membraned running?",
                           e.getName() + ": " + e.getMessage());
        if (e.getName() == std::string(membrane::dbus::kErrorPrefix) + "Unavailable")
            throw CniError(ErrorCode::TryAgainLater, "the membrane agent cannot do " + what + " now: " + e.getMessage(),
                           e.getName());
        std::string hint;
        if (e.getName() == "org.freedesktop.DBus.Error.UnknownMethod")
            hint = " (this membraned predates the endpoint API)";
        throw CniError(ErrorCode::AgentRefused, "the membrane agent refused " + what + hint,
                       e.getName() + ": " + e.getMessage());
    }
}

std::uint32_t AgentClient::pod_mtu() {
    return attempt("GetStatus", [&] {
        const Dict d = AgentProxy(*connection_).GetStatus();
        return field<std::uint32_t>(d, "pod_mtu", "status");
    });
}

Lease AgentClient::allocate_address(const std::string& container_id, const std::string& ifname) {
    return attempt("AllocateAddress", [&] {
        const Dict d = AgentProxy(*connection_).AllocateAddress(container_id, ifname);
        Lease lease;
        lease.ipv4 = field<std::string>(d, "address", "lease");
        lease.prefix_len = field_or<std::uint8_t>(d, "prefix_len", 32);
        lease.gateway = field<std::string>(d, "gateway", "lease");
        lease.pod_cidr = field_or<std::string>(d, "pod_cidr", {});
        lease.mtu = field_or<std::uint32_t>(d, "mtu", 1500);
        return lease;
    });
}

void AgentClient::release_address(const std::string& container_id, const std::string& ifname) {
    attempt("ReleaseAddress", [&] { AgentProxy(*connection_).ReleaseAddress(container_id, ifname); });
}

Endpoint AgentClient::create_endpoint(const EndpointRequest& r) {
    return attempt("CreateEndpoint", [&] {
        Dict request;
        request["container_id"] = sdbus::Variant(r.container_id);
        request["ifname"] = sdbus::Variant(r.ifname);
        request["netns"] = sdbus::Variant(r.netns);
        request["host_ifname"] = sdbus::Variant(r.host_ifname);
        request["address"] = sdbus::Variant(r.ipv4);
        request["mac"] = sdbus::Variant(r.mac);
        request["labels"] = sdbus::Variant(std::map<std::string, std::string>(r.labels.begin(), r.labels.end()));
        // Only when there are some: an agent from before SDK 1.4 refuses a key it does not know.
        if (!r.ports.empty()) request["ports"] = sdbus::Variant(r.ports);
        return endpoint_of(AgentProxy(*connection_).CreateEndpoint(request));
    });
}

void AgentClient::delete_endpoint(const std::string& container_id, const std::string& ifname) {
    attempt("DeleteEndpoint", [&] { AgentProxy(*connection_).DeleteEndpoint(container_id, ifname); });
}

std::optional<Endpoint> AgentClient::find_endpoint(const std::string& container_id, const std::string& ifname) {
    return attempt("FindEndpoint", [&]() -> std::optional<Endpoint> {
        try {
            return endpoint_of(AgentProxy(*connection_).FindEndpoint(container_id, ifname));
        } catch (const sdbus::Error& e) {
            if (e.getName() == std::string(membrane::dbus::kErrorPrefix) + "NotFound") return std::nullopt;
            throw;
        }
    });
}

}  // namespace membrane::cni
