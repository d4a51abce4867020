// membranectl's side of the D-Bus API: one connection, the agent's proxy, and
// failures carried as (what failed, D-Bus error name, message).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <sdbus-c++/IConnection.h>

#include "membrane/model.hpp"

namespace membrane::cli {

// What the user sees as "membranectl: <what>: <error name>: <message>".
class CommandFailure : public std::runtime_error {
public:
    CommandFailure(std::string what, std::string error_name, std::string message);
    const std::string& error_name() const { return error_name_; }
    const std::string& message() const { return message_; }
    const std::string& what_failed() const { return what_; }

private:
    std::string what_, error_name_, message_;
};

// policy_status's failure when policy-l3l4 is not running on the node (never
// loaded, unloaded, failed or quarantined): a state of the node, which a
// command may report instead of failing (`endpoint get`).
class ModuleNotRunning : public CommandFailure {
public:
    using CommandFailure::CommandFailure;
};

class AgentClient {
public:
    // `bus`: "system", "session" or a D-Bus address. Throws CommandFailure.
    explicit AgentClient(std::string bus);
    ~AgentClient();

    // Results as JSON, the shape `-o json` prints.
    nlohmann::json status();
    nlohmann::json modules();
    void load(const std::string& module);
    void unload(const std::string& module, bool force);
    void reload(const std::string& module);
    std::string call(const std::string& module, const std::string& method, const std::string& request_json);
    // policy-l3l4's Status reply (see print_policy_list); `what` names the
    // command in failures. A module that is not running is said so, with the
    // command that loads it (ModuleNotRunning).
    nlohmann::json policy_status(const std::string& what);
    // Any method of policy-l3l4 (Status, Trace), failing as policy_status does.
    nlohmann::json policy_call(const std::string& method, const std::string& request, const std::string& what);
    // A method of `module` whose reply is a JSON object, failing as
    // policy_status does (ModuleNotRunning names the module).
    nlohmann::json module_call(const std::string& module, const std::string& method, const std::string& request,
                               const std::string& what);
    // The datapath trace (D-Bus TracePacket): {"trace": {...}, "steps": [...]}
    // with the keys of org.membrane.Agent1.xml.
    nlohmann::json trace_packet(const std::string& from, const std::string& to, const std::string& protocol,
                                std::uint16_t port);

    // Endpoints as objects with the keys of the D-Bus endpoint dictionary.
    nlohmann::json endpoints();
    nlohmann::json endpoint(std::uint64_t id);
    nlohmann::json find_endpoint(const std::string& container_id, const std::string& ifname);
    nlohmann::json set_endpoint_labels(std::uint64_t id, const membrane::Labels& labels);
    // [{id, labels, reserved, endpoints}] and [{name, ip, pod_cidr, local}].
    nlohmann::json identities();
    nlohmann::json nodes();

    // Applied objects. apply: [{kind, namespace, name, action}]; objects: the documents.
    nlohmann::json apply(const std::string& source, const std::string& manifests);
    void delete_object(const std::string& kind, const std::string& namespace_, const std::string& name);
    nlohmann::json objects(const std::string& kind, const std::string& namespace_, const std::string& name);
    // The datapath's counters, {name: packets} in reason order.
    nlohmann::ordered_json stats();
    // The flow monitor's events after seq `after`: {"last", "lost", "events": [...]},
    // each event as monitor.hpp describes its JSON.
    nlohmann::json flows(std::uint64_t after, std::uint32_t max);

private:
    template <class Call>
    auto attempt(const std::string& what, Call&& call);

    std::string bus_;
    std::unique_ptr<sdbus::IConnection> connection_;
};

}  // namespace membrane::cli
