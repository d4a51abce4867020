#include "agent_client.hpp"

#include <cstdint>
#include <map>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "membrane/dbus/agent_proxy.hpp"
#include "membrane/dbus/bus_spec.hpp"
#include "membrane/dbus/model_codec.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::cli {
namespace {

using membrane::dbus::AgentProxy;

namespace keys = membrane::dbus::keys;

// The JSON of an endpoint has the D-Bus dictionary's keys, read through the
// shared codec (so a reply missing a key is an error, not a silent null).
nlohmann::json endpoint_json(const membrane::dbus::Dictionary& dict) {
    const EndpointInfo e = membrane::dbus::endpoint_from_dictionary(dict);
    return {
        {keys::kId, e.id},
        {keys::kContainerId, e.container_id},
        {keys::kIfname, e.ifname},
        {keys::kNetns, e.netns},
        {keys::kHostIfname, e.host_ifname},
        {keys::kHostIfindex, e.host_ifindex},
        {keys::kAddress, e.ipv4},
        {keys::kMac, e.mac},
        {keys::kLabels, e.labels},
        {keys::kIdentity, e.identity},
        {keys::kState, e.state},
    };
}

// a{sv} values as JSON, by their D-Bus type.
nlohmann::json variant_to_json(const sdbus::Variant& value) {
    const std::string type = value.peekValueType();
    if (type == "s") return value.get<std::string>();
    if (type == "t") return value.get<std::uint64_t>();
    if (type == "u") return value.get<std::uint32_t>();
    if (type == "x") return value.get<std::int64_t>();
    if (type == "i") return value.get<std::int32_t>();
    if (type == "q") return value.get<std::uint16_t>();
    if (type == "b") return value.get<bool>();
    if (type == "d") return value.get<double>();
    if (type == "as") return value.get<std::vector<std::string>>();
    if (type == "a{sx}") return value.get<std::map<std::string, std::int64_t>>();
    if (type == "a{ss}") return value.get<std::map<std::string, std::string>>();
    return "<" + type + ">";
}

}  // namespace

CommandFailure::CommandFailure(std::string what, std::string error_name, std::string message)
    : std::runtime_error(what + ": " + error_name + ": " + message),
      what_(std::move(what)),
      error_name_(std::move(error_name)),
      message_(std::move(message)) {}

AgentClient::AgentClient(std::string bus) : bus_(std::move(bus)) {
    try {
        connection_ = membrane::dbus::open_bus(bus_);
    } catch (const sdbus::Error& e) {
        throw CommandFailure("cannot connect to " + membrane::dbus::describe_bus(bus_), e.getName(),
                             e.getMessage() + " (choose the bus with --bus or " + membrane::dbus::kBusAddressEnv + ")");
    }
}

AgentClient::~AgentClient() = default;

template <class Call>
auto AgentClient::attempt(const std::string& what, Call&& call) {
    try {
        return call();
    } catch (const membrane::dbus::DictionaryError& e) {
        throw CommandFailure(what, "unexpected reply", std::string(e.what()) + " (is membraned of another version?)");
    } catch (const sdbus::Error& e) {
        std::string message = e.getMessage();
        if (e.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
            e.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner")
            message += " (is membraned running on " + membrane::dbus::describe_bus(bus_) + "? choose the bus with --bus)";
        throw CommandFailure(what, e.getName(), message);
    }
}

nlohmann::json AgentClient::status() {
    return attempt("status", [&] {
        AgentProxy agent(*connection_);
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, value] : agent.GetStatus()) out[key] = variant_to_json(value);
        return out;
    });
}

nlohmann::json AgentClient::modules() {
    return attempt("module list", [&] {
        AgentProxy agent(*connection_);
        nlohmann::json out = nlohmann::json::array();
        for (const auto& m : agent.ListModules()) {
            out.push_back({{"name", std::get<0>(m)},
                           {"state", std::get<1>(m)},
                           {"generation", std::get<2>(m)},
                           {"path", std::get<3>(m)},
                           {"sdk", std::get<4>(m)},
                           {"message", std::get<5>(m)},
                           {"stages", std::get<6>(m)}});
        }
        return out;
    });
}

void AgentClient::load(const std::string& module) {
    attempt("load module " + module, [&] { AgentProxy(*connection_).LoadModule(module); });
}

void AgentClient::unload(const std::string& module, bool force) {
    attempt("unload module " + module, [&] { AgentProxy(*connection_).UnloadModule(module, force); });
}

void AgentClient::reload(const std::string& module) {
    attempt("reload module " + module, [&] { AgentProxy(*connection_).ReloadModule(module); });
}

std::string AgentClient::call(const std::string& module, const std::string& method, const std::string& request_json) {
    return attempt("call " + module + " " + method, [&] {
        auto proxy = sdbus::createProxy(*connection_, membrane::dbus::kServiceName,
                                        membrane::dbus::module_object_path(module));
        std::string reply;
        proxy->callMethod(method)
            .onInterface(membrane::dbus::kModuleInterface)
            .withArguments(request_json)
            .storeResultsTo(reply);
        return reply;
    });
}

nlohmann::json AgentClient::policy_status(const std::string& what) { return policy_call("Status", "{}", what); }

nlohmann::json AgentClient::policy_call(const std::string& method, const std::string& request, const std::string& what) {
    return module_call("policy-l3l4", method, request, what);
}

nlohmann::json AgentClient::module_call(const std::string& module, const std::string& method, const std::string& request,
                                        const std::string& what) {
    const std::string& kModule = module;
    std::string reply;
    try {
        reply = call(kModule, method, request);
    } catch (const CommandFailure& e) {
        // No object at the module's path: never loaded, unloaded, failed or
        // quarantined. An object without the method: a module of another version.
        const std::string& name = e.error_name();
        if (name == "org.freedesktop.DBus.Error.UnknownObject") {
            throw ModuleNotRunning(what, name,
                                   kModule + " is not running on this node: load it with `membranectl "
                                   "module load " + kModule + "` (`membranectl module list` shows its state)");
        }
        if (name == "org.freedesktop.DBus.Error.UnknownMethod" || name == "org.freedesktop.DBus.Error.UnknownInterface")
            throw CommandFailure(what, name, std::string(kModule) + " answers no " + method + " (is it of another version?)");
        throw CommandFailure(what, name, e.message());
    }
    nlohmann::json answer = nlohmann::json::parse(reply, nullptr, false);
    if (!answer.is_object())
        throw CommandFailure(what, "unexpected reply", std::string(kModule) + " " + method + " is not a JSON object: " + reply);
    return answer;
}

nlohmann::json AgentClient::trace_packet(const std::string& from, const std::string& to, const std::string& protocol,
                                         std::uint16_t port) {
    return attempt("policy trace", [&] {
        const auto [trace, steps] = AgentProxy(*connection_).TracePacket(from, to, protocol, port);
        nlohmann::json out{{"trace", nlohmann::json::object()}, {"steps", nlohmann::json::array()}};
        for (const auto& [key, value] : trace) out["trace"][key] = variant_to_json(value);
        for (const auto& step : steps) {
            nlohmann::json entry = nlohmann::json::object();
            for (const auto& [key, value] : step) entry[key] = variant_to_json(value);
            out["steps"].push_back(std::move(entry));
        }
        return out;
    });
}

nlohmann::json AgentClient::endpoints() {
    return attempt("endpoint list", [&] {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& dict : AgentProxy(*connection_).ListEndpoints()) out.push_back(endpoint_json(dict));
        return out;
    });
}

nlohmann::json AgentClient::endpoint(std::uint64_t id) {
    return attempt("endpoint get " + std::to_string(id),
                   [&] { return endpoint_json(AgentProxy(*connection_).GetEndpoint(id)); });
}

nlohmann::json AgentClient::find_endpoint(const std::string& container_id, const std::string& ifname) {
    return attempt("endpoint find " + container_id + " " + ifname,
                   [&] { return endpoint_json(AgentProxy(*connection_).FindEndpoint(container_id, ifname)); });
}

nlohmann::json AgentClient::set_endpoint_labels(std::uint64_t id, const membrane::Labels& labels) {
    return attempt("endpoint labels " + std::to_string(id),
                   [&] { return endpoint_json(AgentProxy(*connection_).SetEndpointLabels(id, labels)); });
}

nlohmann::json AgentClient::identities() {
    return attempt("identity list", [&] {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& entry : AgentProxy(*connection_).ListIdentities()) {
            const IdentityInfo i = membrane::dbus::identity_from_entry(entry);
            out.push_back({{"id", i.id}, {"labels", i.labels}, {"reserved", i.reserved}, {"endpoints", i.endpoints}});
        }
        return out;
    });
}

nlohmann::ordered_json AgentClient::stats() {
    return attempt("stats", [&] {
        nlohmann::ordered_json out = nlohmann::ordered_json::object();
        for (const auto& counter : AgentProxy(*connection_).GetStats()) out[counter.get<0>()] = counter.get<1>();
        return out;
    });
}

namespace {

// One GetFlows dictionary as JSON, shaped after Hubble's flow JSON where it fits.
nlohmann::json flow_json(const membrane::dbus::Dictionary& d) {
    using membrane::dbus::require;
    const auto side = [&](const std::string& prefix) {
        nlohmann::json labels = nlohmann::json::array();
        for (const auto& [key, value] : require<std::map<std::string, std::string>>(d, prefix + "labels")) {
            labels.push_back(key + "=" + value);
        }
        return nlohmann::json{{"identity", require<std::uint32_t>(d, prefix + "identity")},
                              {"namespace", require<std::string>(d, prefix + "namespace")},
                              {"pod_name", require<std::string>(d, prefix + "pod")},
                              {"node_name", require<std::string>(d, prefix + "node")},
                              {"labels", labels}};
    };
    nlohmann::json flow{{"seq", require<std::uint64_t>(d, "seq")},
                        {"time_ns", require<std::int64_t>(d, "time_ns")},
                        {"type", require<std::string>(d, "type")},
                        {"verdict", require<std::string>(d, "verdict")},
                        {"drop_reason", require<std::string>(d, "drop_reason")},
                        {"traffic_direction", require<std::string>(d, "direction")},
                        {"stage", require<std::string>(d, "stage")},
                        {"rule_id", require<std::uint32_t>(d, "rule_id")},
                        {"ifindex", require<std::uint32_t>(d, "ifindex")},
                        {"source", side("source_")},
                        {"destination", side("destination_")}};
    // A trace point says where the packet was forwarded (Hubble's observation point).
    if (flow["type"] == "trace") {
        const auto reason = d.find("reason");
        flow["trace_observation_point"] = reason == d.end() ? std::string() : reason->second.get<std::string>();
    }
    const std::string protocol = require<std::string>(d, "protocol");
    if (!protocol.empty()) {
        flow["IP"] = {{"source", require<std::string>(d, "source_ip")},
                      {"destination", require<std::string>(d, "destination_ip")},
                      {"ipVersion", "IPv4"}};
        // Ports for the protocols that have them (ICMP's id is no port).
        nlohmann::json l4 = nlohmann::json::object();
        if (protocol == "TCP" || protocol == "UDP" || protocol == "SCTP") {
            l4 = {{"source_port", require<std::uint16_t>(d, "source_port")},
                  {"destination_port", require<std::uint16_t>(d, "destination_port")}};
        }
        if (protocol == "TCP") l4["flags"] = require<std::string>(d, "tcp_flags");
        flow["l4"] = {{protocol, l4}};
    }
    return flow;
}

}  // namespace

nlohmann::json AgentClient::flows(std::uint64_t after, std::uint32_t max) {
    return attempt("monitor", [&] {
        const auto [last, lost, events] = AgentProxy(*connection_).GetFlows(after, max);
        nlohmann::json out{{"last", last}, {"lost", lost}, {"events", nlohmann::json::array()}};
        for (const auto& event : events) out["events"].push_back(flow_json(event));
        return out;
    });
}

nlohmann::json AgentClient::nodes() {
    return attempt("node list", [&] {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& entry : AgentProxy(*connection_).ListNodes()) {
            const NodeInfo n = membrane::dbus::node_from_entry(entry);
            out.push_back({{"name", n.name}, {"ip", n.ip}, {"pod_cidr", n.pod_cidr}, {"local", n.local}});
        }
        return out;
    });
}

nlohmann::json AgentClient::apply(const std::string& source, const std::string& manifests) {
    return attempt("apply", [&] {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& o : AgentProxy(*connection_).Apply(source, manifests)) {
            out.push_back({{"kind", std::get<0>(o)}, {"namespace", std::get<1>(o)}, {"name", std::get<2>(o)},
                           {"action", std::get<3>(o)}});
        }
        return out;
    });
}

void AgentClient::delete_object(const std::string& kind, const std::string& namespace_, const std::string& name) {
    attempt("delete", [&] { AgentProxy(*connection_).DeleteObject(kind, namespace_, name); });
}

nlohmann::json AgentClient::objects(const std::string& kind, const std::string& namespace_, const std::string& name) {
    return attempt("get", [&] {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& document : AgentProxy(*connection_).ListObjects(kind, namespace_, name)) {
            out.push_back(nlohmann::json::parse(document));
        }
        return out;
    });
}

}  // namespace membrane::cli
