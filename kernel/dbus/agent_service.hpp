// The D-Bus face of membraned: bus name and object org.membrane.Agent1 at
// /org/membrane/Agent1 (dbus/org.membrane.Agent1.xml), plus one object per
// module that added methods (/org/membrane/Agent1/modules/<module>,
// interface org.membrane.Module1). Runs on the agent's io_context: no thread
// of its own, so handlers may call AgentControl directly.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <sdbus-c++/IConnection.h>

#include "agent/agent_control.hpp"
#include "bus/event_bus.hpp"
#include "dbus/caller_access.hpp"

namespace membrane::kernel {

// `spec` is "system", "session" or a D-Bus address ("unix:path=...").
// Throws std::runtime_error naming the bus when it cannot be reached.
std::unique_ptr<sdbus::IConnection> connect_bus(const std::string& spec);

class AgentService final : public ModuleMethodSink {
public:
    // Publishes the agent object, forwards events::ModuleStateChanged as the
    // ModuleStateChanged signal and events::Endpoint{Created,Updated,Deleted}
    // as EndpointChanged, then owns the bus name. Throws std::runtime_error
    // (naming `bus_spec`, the spec given to connect_bus) when the name is
    // taken or denied. `access` decides which callers may change the agent.
    AgentService(boost::asio::io_context& io, std::unique_ptr<sdbus::IConnection> connection, AgentControl& control,
                 EndpointControl& endpoints, EventBus& bus, std::string bus_spec = {},
                 CallerAccess access = CallerAccess{});
    ~AgentService() override;
    AgentService(const AgentService&) = delete;
    AgentService& operator=(const AgentService&) = delete;

    // Must be called on the loop thread. Throws ControlError(InvalidArgument)
    // for a module or method name D-Bus cannot carry.
    void set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace membrane::kernel
