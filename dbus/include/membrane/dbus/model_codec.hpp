// The D-Bus shapes of the model's types (dbus/org.membrane.Agent1.xml), one
// conversion each way per type, shared by the service (kernel/dbus) and its
// clients (membranectl, membrane-cni) so both sides spell the keys alike.
//   endpoint: a{sv}  (keys below)
//   identity: (ua{ss}bu)  id, labels, reserved, endpoints
//   node:     (sssb)      name, ip, pod_cidr, local
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <sdbus-c++/Types.h>

#include "membrane/model.hpp"
#include "membrane/policy.hpp"

namespace membrane::dbus {

using Dictionary = std::map<std::string, sdbus::Variant>;
using IdentityEntry = sdbus::Struct<std::uint32_t, Labels, bool, std::uint32_t>;
using NodeEntry = sdbus::Struct<std::string, std::string, std::string, bool>;

// Keys of the endpoint dictionary, of the CreateEndpoint request (a subset
// plus labels) and of the AllocateAddress lease.
namespace keys {
inline constexpr const char* kId = "id";                      // t
inline constexpr const char* kContainerId = "container_id";   // s
inline constexpr const char* kIfname = "ifname";              // s
inline constexpr const char* kNetns = "netns";                // s
inline constexpr const char* kHostIfname = "host_ifname";     // s
inline constexpr const char* kHostIfindex = "host_ifindex";   // u
inline constexpr const char* kAddress = "address";            // s
inline constexpr const char* kMac = "mac";                    // s
inline constexpr const char* kLabels = "labels";              // a{ss}
inline constexpr const char* kIdentity = "identity";          // u
inline constexpr const char* kState = "state";                // s
inline constexpr const char* kPrefixLen = "prefix_len";       // y
inline constexpr const char* kGateway = "gateway";            // s
inline constexpr const char* kPodCidr = "pod_cidr";           // s
inline constexpr const char* kMtu = "mtu";                    // u
inline constexpr const char* kPorts = "ports";                // a{ss}: port name -> "<number>/<TCP|UDP|SCTP>" (SDK 1.4)
}  // namespace keys

// A dictionary that lacks a key, has it with the wrong type, or has a key
// nobody knows. The message names the key.
class DictionaryError : public std::invalid_argument {
public:
    DictionaryError(std::string key, const std::string& message) : std::invalid_argument(message), key_(std::move(key)) {}
    const std::string& key() const { return key_; }

private:
    std::string key_;
};

// The value of `key` as T; DictionaryError when missing or of another type.
template <class T>
T require(const Dictionary& dict, const std::string& key) {
    const auto it = dict.find(key);
    if (it == dict.end()) throw DictionaryError(key, "missing key '" + key + "'");
    const std::string expected = sdbus::signature_of<T>::str();
    const std::string actual = it->second.peekValueType();
    if (actual != expected)
        throw DictionaryError(key, "key '" + key + "' must be of type '" + expected + "', not '" + actual + "'");
    return it->second.get<T>();
}

// As require(), but a missing key gives `fallback`.
template <class T>
T value_or(const Dictionary& dict, const std::string& key, T fallback) {
    return dict.contains(key) ? require<T>(dict, key) : std::move(fallback);
}

// DictionaryError for the first key not in `known` (a typo such as "ipv4"
// for "address" must not pass silently).
inline void reject_unknown_keys(const Dictionary& dict, const std::set<std::string>& known) {
    for (const auto& [key, value] : dict)
        if (!known.contains(key)) throw DictionaryError(key, "unknown key '" + key + "'");
}

// Named container ports as CreateEndpoint carries them: {"http": "80/TCP"}.
inline std::map<std::string, std::string> ports_to_map(const std::vector<ContainerPort>& ports) {
    std::map<std::string, std::string> out;
    for (const auto& p : ports) {
        out[p.name] = std::to_string(p.port) + (p.protocol == 17 ? "/UDP" : p.protocol == 132 ? "/SCTP" : "/TCP");
    }
    return out;
}

// Throws DictionaryError (key "ports") naming the entry that is not a port.
inline std::vector<ContainerPort> ports_from_map(const std::map<std::string, std::string>& map) {
    std::vector<ContainerPort> out;
    for (const auto& [name, text] : map) {
        const auto fail = [&, name = name](const std::string& problem) {
            throw DictionaryError(keys::kPorts, std::string("ports: '") + name + "': " + problem);
        };
        if (!policy::is_port_name(name)) {
            fail("not a port name (at most 15 of a-z, 0-9 and '-', with a letter, as Kubernetes names container ports)");
        }
        const auto slash = text.find('/');
        const std::string number = text.substr(0, slash);
        const std::string protocol = slash == std::string::npos ? "" : text.substr(slash + 1);
        if (number.empty() || number.size() > 5 || number.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(number) < 1 || std::stoul(number) > 65535) {
            fail("'" + text + "' does not start with a port number (1 to 65535)");
        }
        ContainerPort port{name, static_cast<std::uint16_t>(std::stoul(number)), 6};
        if (protocol == "UDP") {
            port.protocol = 17;
        } else if (protocol == "SCTP") {
            port.protocol = 132;
        } else if (protocol != "TCP") {
            fail("'" + text + "' must be <port>/TCP, <port>/UDP or <port>/SCTP");
        }
        out.push_back(port);
    }
    return out;
}

inline Dictionary endpoint_to_dictionary(const EndpointInfo& e) {
    return {
        {keys::kId, sdbus::Variant(e.id)},
        {keys::kContainerId, sdbus::Variant(e.container_id)},
        {keys::kIfname, sdbus::Variant(e.ifname)},
        {keys::kNetns, sdbus::Variant(e.netns)},
        {keys::kHostIfname, sdbus::Variant(e.host_ifname)},
        {keys::kHostIfindex, sdbus::Variant(e.host_ifindex)},
        {keys::kAddress, sdbus::Variant(e.ipv4)},
        {keys::kMac, sdbus::Variant(e.mac)},
        {keys::kLabels, sdbus::Variant(e.labels)},
        {keys::kIdentity, sdbus::Variant(e.identity)},
        {keys::kState, sdbus::Variant(e.state)},
    };
}

// Every key is required; unknown keys are ignored (a newer agent may add some).
inline EndpointInfo endpoint_from_dictionary(const Dictionary& dict) {
    EndpointInfo e;
    e.id = require<std::uint64_t>(dict, keys::kId);
    e.container_id = require<std::string>(dict, keys::kContainerId);
    e.ifname = require<std::string>(dict, keys::kIfname);
    e.netns = require<std::string>(dict, keys::kNetns);
    e.host_ifname = require<std::string>(dict, keys::kHostIfname);
    e.host_ifindex = require<std::uint32_t>(dict, keys::kHostIfindex);
    e.ipv4 = require<std::string>(dict, keys::kAddress);
    e.mac = require<std::string>(dict, keys::kMac);
    e.labels = require<Labels>(dict, keys::kLabels);
    e.identity = require<std::uint32_t>(dict, keys::kIdentity);
    e.state = require<std::string>(dict, keys::kState);
    return e;
}

inline IdentityEntry identity_to_entry(const IdentityInfo& i) {
    return IdentityEntry(i.id, i.labels, i.reserved, i.endpoints);
}

inline IdentityInfo identity_from_entry(const IdentityEntry& entry) {
    IdentityInfo i;
    i.id = entry.get<0>();
    i.labels = entry.get<1>();
    i.reserved = entry.get<2>();
    i.endpoints = entry.get<3>();
    return i;
}

inline NodeEntry node_to_entry(const NodeInfo& n) { return NodeEntry(n.name, n.ip, n.pod_cidr, n.local); }

inline NodeInfo node_from_entry(const NodeEntry& entry) {
    return NodeInfo{entry.get<0>(), entry.get<1>(), entry.get<2>(), entry.get<3>()};
}

}  // namespace membrane::dbus
