// The D-Bus face of membraned: bus name and object org.membrane.Agent1 at
// /org/membrane/Agent1 (dbus/org.membrane.Agent1.xml), plus one object per
// module that added methods (/org/membrane/Agent1/modules/<module>,
// interface org.membrane.Module1). Runs on the agent's io_context: no thread
// of its own, so handlers may call AgentControl directly.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
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
    //
    // When the connection is lost (the bus daemon died or restarted), the
    // service connects to `bus_spec` again every kReconnectInterval, owning
    // the name and publishing every object anew, for up to
    // kReconnectWindow; if that fails, `on_gone` is called with why (the
    // agent exits non-zero then, so systemd restarts it rather than keep a
    // deaf agent alive). Without `on_gone` the service just goes quiet.
    AgentService(boost::asio::io_context& io, std::unique_ptr<sdbus::IConnection> connection, AgentControl& control,
                 EndpointControl& endpoints, EventBus& bus, std::string bus_spec = {},
                 CallerAccess access = CallerAccess{}, std::function<void(const std::string& why)> on_gone = {});
    ~AgentService() override;
    AgentService(const AgentService&) = delete;
    AgentService& operator=(const AgentService&) = delete;

    // Must be called on the loop thread. Throws ControlError(InvalidArgument)
    // for a module or method name D-Bus cannot carry.
    void set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) override;

    static constexpr std::chrono::milliseconds kReconnectInterval{500};
    static constexpr std::chrono::seconds kReconnectWindow{10};

private:
    struct Impl;
    std::unique_ptr<Impl> make_impl(std::unique_ptr<sdbus::IConnection> connection);
    void connection_lost(const std::string& why);
    void retry_reconnect();

    boost::asio::io_context& io_;
    AgentControl& control_;
    EndpointControl& endpoints_;
    EventBus& bus_;
    std::string bus_spec_;
    CallerAccess access_;
    std::function<void(const std::string&)> on_gone_;
    std::map<std::string, std::map<std::string, MethodHandler>> module_methods_;
    boost::asio::steady_timer retry_;
    std::chrono::steady_clock::time_point reconnect_deadline_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::unique_ptr<Impl> impl_;  // null while disconnected
};

}  // namespace membrane::kernel
