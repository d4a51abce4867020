#include "dbus/agent_object.hpp"

#include "dbus/control_codec.hpp"
#include "dbus/dbus_errors.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::kernel {
namespace {

// Runs one control call; whatever it throws leaves as a named D-Bus error.
template <class Call>
auto answer(Call&& call) {
    try {
        return call();
    } catch (...) {
        throw current_exception_as_dbus_error(dbus_error_name(control_error_name(ControlErrorKind::Failed)));
    }
}

}  // namespace

AgentObject::AgentObject(sdbus::IConnection& connection, AgentControl& control, EndpointControl& endpoints)
    : AdaptorInterfaces(connection, membrane::dbus::kAgentObjectPath), control_(control), endpoints_(endpoints) {
    registerAdaptor();
}

AgentObject::~AgentObject() { unregisterAdaptor(); }

std::map<std::string, sdbus::Variant> AgentObject::GetStatus() {
    return answer([&] {
        const AgentStatus status = control_.status();
        return std::map<std::string, sdbus::Variant>{
            {"node", sdbus::Variant(status.node)},
            {"version", sdbus::Variant(status.version)},
            {"state", sdbus::Variant(status.state)},
            {"uptime_seconds", sdbus::Variant(status.uptime_seconds)},
            {"pin_dir", sdbus::Variant(status.pin_dir)},
            {"config_path", sdbus::Variant(status.config_path)},
            {"devices", sdbus::Variant(status.devices)},
            {"modules_running", sdbus::Variant(status.modules_running)},
            {"modules_failed", sdbus::Variant(status.modules_failed)},
            {"pod_mtu", sdbus::Variant(status.pod_mtu)},
        };
    });
}

std::vector<AgentObject::ModuleEntry> AgentObject::ListModules() {
    return answer([&] {
        std::vector<ModuleEntry> entries;
        for (const ModuleStatus& m : control_.modules())
            entries.emplace_back(m.name, m.state, m.generation, m.path, m.sdk, m.message, m.stages);
        return entries;
    });
}

void AgentObject::LoadModule(const std::string& name) {
    answer([&] { control_.load_module(name); });
}

void AgentObject::UnloadModule(const std::string& name, const bool& force) {
    answer([&] { control_.unload_module(name, force); });
}

void AgentObject::ReloadModule(const std::string& name) {
    answer([&] { control_.reload_module(name); });
}

using membrane::dbus::endpoint_to_dictionary;

membrane::dbus::Dictionary AgentObject::AllocateAddress(const std::string& container_id, const std::string& ifname) {
    return answer([&] { return lease_to_dictionary(endpoints_.allocate_address(container_id, ifname)); });
}

void AgentObject::ReleaseAddress(const std::string& container_id, const std::string& ifname) {
    answer([&] { endpoints_.release_address(container_id, ifname); });
}

membrane::dbus::Dictionary AgentObject::CreateEndpoint(const Dictionary& request) {
    return answer([&] { return endpoint_to_dictionary(endpoints_.create_endpoint(request_from_dictionary(request))); });
}

void AgentObject::DeleteEndpoint(const std::string& container_id, const std::string& ifname) {
    answer([&] { endpoints_.delete_endpoint(container_id, ifname); });
}

membrane::dbus::Dictionary AgentObject::GetEndpoint(const std::uint64_t& id) {
    return answer([&] { return endpoint_to_dictionary(endpoints_.get_endpoint(id)); });
}

membrane::dbus::Dictionary AgentObject::FindEndpoint(const std::string& container_id, const std::string& ifname) {
    return answer([&] { return endpoint_to_dictionary(endpoints_.find_endpoint(container_id, ifname)); });
}

std::vector<membrane::dbus::Dictionary> AgentObject::ListEndpoints() {
    return answer([&] {
        std::vector<Dictionary> out;
        for (const auto& endpoint : endpoints_.list_endpoints()) out.push_back(endpoint_to_dictionary(endpoint));
        return out;
    });
}

membrane::dbus::Dictionary AgentObject::SetEndpointLabels(const std::uint64_t& id,
                                                          const std::map<std::string, std::string>& labels) {
    return answer([&] { return endpoint_to_dictionary(endpoints_.set_endpoint_labels(id, labels)); });
}

std::vector<membrane::dbus::IdentityEntry> AgentObject::ListIdentities() {
    return answer([&] {
        std::vector<membrane::dbus::IdentityEntry> out;
        for (const auto& identity : endpoints_.list_identities()) out.push_back(membrane::dbus::identity_to_entry(identity));
        return out;
    });
}

std::vector<membrane::dbus::NodeEntry> AgentObject::ListNodes() {
    return answer([&] {
        std::vector<membrane::dbus::NodeEntry> out;
        for (const auto& node : endpoints_.list_nodes()) out.push_back(membrane::dbus::node_to_entry(node));
        return out;
    });
}

}  // namespace membrane::kernel
