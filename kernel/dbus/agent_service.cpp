#include "dbus/agent_service.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "dbus/agent_object.hpp"
#include "dbus/asio_bus_pump.hpp"
#include "dbus/module_objects.hpp"
#include "membrane/dbus/bus_spec.hpp"
#include "membrane/dbus/names.hpp"
#include "membrane/events.hpp"

namespace membrane::kernel {

std::unique_ptr<sdbus::IConnection> connect_bus(const std::string& spec) {
    try {
        return membrane::dbus::open_bus(spec);
    } catch (const sdbus::Error& e) {
        throw std::runtime_error("cannot connect to " + membrane::dbus::describe_bus(spec) + ": " + e.getName() + ": " +
                                 e.getMessage());
    }
}

namespace {

void request_service_name(sdbus::IConnection& connection, const std::string& bus) {
    try {
        connection.requestName(membrane::dbus::kServiceName);
    } catch (const sdbus::Error& e) {
        std::string why = e.getName() + ": " + e.getMessage();
        if (e.getName() == "org.freedesktop.DBus.Error.FileExists")
            why = "the name is already owned (is another membraned running?)";
        else if (e.getName() == "org.freedesktop.DBus.Error.AccessDenied")
            why = "the bus policy denies it (only root may own it; see org.membrane.Agent1.conf): " + e.getMessage();
        throw std::runtime_error(std::string("cannot own D-Bus name ") + membrane::dbus::kServiceName + " on " + bus +
                                 ": " + why);
    }
}

}  // namespace

struct AgentService::Impl {
    // Declared in construction order; destroyed in reverse, the connection last.
    std::unique_ptr<sdbus::IConnection> connection;
    CallerAccess access;
    AgentObject agent;
    ModuleObjects modules;
    std::shared_ptr<AsioBusPump> pump;
    Subscription state_events;
    std::vector<Subscription> endpoint_events;

    Impl(boost::asio::io_context& io, std::unique_ptr<sdbus::IConnection> conn, AgentControl& control,
         EndpointControl& endpoints, EventBus& bus, const std::string& bus_spec, CallerAccess caller_access)
        : connection(std::move(conn)),
          access(std::move(caller_access)),
          agent(*connection, control, endpoints, access),
          modules(io, *connection, access),
          pump(std::make_shared<AsioBusPump>(io, *connection)) {
        state_events = bus.subscribe<membrane::events::ModuleStateChanged>(
            "dbus", [this](const membrane::events::ModuleStateChanged& event) {
                try {
                    agent.emitModuleStateChanged(event.module, event.state, event.message);
                } catch (const std::exception& e) {
                    spdlog::warn("D-Bus: cannot send ModuleStateChanged for {}: {}", event.module, e.what());
                }
                pump->kick();  // the signal may sit in sd-bus's output queue
            });
        forward_endpoint_event<membrane::events::EndpointCreated>(bus, "created");
        forward_endpoint_event<membrane::events::EndpointUpdated>(bus, "updated");
        forward_endpoint_event<membrane::events::EndpointDeleted>(bus, "deleted");
        const std::string bus_name = bus_spec.empty() ? "the bus" : membrane::dbus::describe_bus(bus_spec);
        request_service_name(*connection, bus_name);
        pump->start();
    }

    template <class Event>
    void forward_endpoint_event(EventBus& bus, const char* change) {
        endpoint_events.push_back(bus.subscribe<Event>("dbus", [this, change](const Event& event) {
            try {
                agent.emitEndpointChanged(event.endpoint.id, change);
            } catch (const std::exception& e) {
                spdlog::warn("D-Bus: cannot send EndpointChanged for endpoint {}: {}", event.endpoint.id, e.what());
            }
            pump->kick();
        }));
    }

    ~Impl() {
        state_events.reset();
        for (auto& subscription : endpoint_events) subscription.reset();
        pump->stop();
    }
};

AgentService::AgentService(boost::asio::io_context& io, std::unique_ptr<sdbus::IConnection> connection,
                           AgentControl& control, EndpointControl& endpoints, EventBus& bus, std::string bus_spec,
                           CallerAccess access)
    : impl_(std::make_unique<Impl>(io, std::move(connection), control, endpoints, bus, bus_spec, std::move(access))) {}

AgentService::~AgentService() = default;

void AgentService::set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) {
    impl_->modules.set(module, std::move(methods));
}

}  // namespace membrane::kernel
