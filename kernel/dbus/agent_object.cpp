#include "dbus/agent_object.hpp"

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

AgentObject::AgentObject(sdbus::IConnection& connection, AgentControl& control)
    : AdaptorInterfaces(connection, membrane::dbus::kAgentObjectPath), control_(control) {
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

void AgentObject::UnloadModule(const std::string& name) {
    answer([&] { control_.unload_module(name); });
}

void AgentObject::ReloadModule(const std::string& name) {
    answer([&] { control_.reload_module(name); });
}

}  // namespace membrane::kernel
