#include "dbus/agent_service.hpp"

#include <chrono>
#include <functional>
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

// Everything bound to one connection; a reconnect builds a new one.
struct AgentService::Impl {
    // Declared in construction order; destroyed in reverse, the connection last.
    std::unique_ptr<sdbus::IConnection> connection;
    AgentObject agent;
    ModuleObjects modules;
    std::shared_ptr<AsioBusPump> pump;
    Subscription state_events;
    std::vector<Subscription> endpoint_events;

    Impl(boost::asio::io_context& io, std::unique_ptr<sdbus::IConnection> conn, AgentControl& control,
         EndpointControl& endpoints, EventBus& bus, const std::string& bus_spec, const CallerAccess& access,
         std::function<void(const std::string&)> on_lost)
        : connection(std::move(conn)),
          agent(*connection, control, endpoints, access),
          modules(io, *connection, access),
          pump(std::make_shared<AsioBusPump>(io, *connection, std::move(on_lost))) {
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
                           CallerAccess access, std::function<void(const std::string&)> on_gone)
    : io_(io),
      control_(control),
      endpoints_(endpoints),
      bus_(bus),
      bus_spec_(std::move(bus_spec)),
      access_(std::move(access)),
      on_gone_(std::move(on_gone)),
      retry_(io) {
    impl_ = make_impl(std::move(connection));
}

AgentService::~AgentService() { retry_.cancel(); }

std::unique_ptr<AgentService::Impl> AgentService::make_impl(std::unique_ptr<sdbus::IConnection> connection) {
    return std::make_unique<Impl>(io_, std::move(connection), control_, endpoints_, bus_, bus_spec_, access_,
                                  [this, alive = std::weak_ptr<bool>(alive_)](const std::string& why) {
                                      if (!alive.expired()) connection_lost(why);
                                  });
}

void AgentService::set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) {
    if (impl_) impl_->modules.set(module, methods);
    // Kept to publish again on a new connection.
    if (methods.empty())
        module_methods_.erase(module);
    else
        module_methods_[module] = std::move(methods);
}

void AgentService::connection_lost(const std::string& why) {
    if (!impl_) return;
    impl_.reset();
    const std::string bus = bus_spec_.empty() ? "the bus" : membrane::dbus::describe_bus(bus_spec_);
    if (bus_spec_.empty() || !on_gone_) {
        if (on_gone_) on_gone_("the D-Bus connection was lost (" + why + ") and the bus is unknown");
        return;
    }
    spdlog::warn("D-Bus: connection to {} lost ({}); reconnecting for up to {} s", bus, why,
                 std::chrono::duration_cast<std::chrono::seconds>(kReconnectWindow).count());
    reconnect_deadline_ = std::chrono::steady_clock::now() + kReconnectWindow;
    retry_reconnect();
}

void AgentService::retry_reconnect() {
    const std::string bus = membrane::dbus::describe_bus(bus_spec_);
    std::string failure;
    try {
        impl_ = make_impl(connect_bus(bus_spec_));
        for (const auto& [module, methods] : module_methods_) {
            try {
                impl_->modules.set(module, methods);
            } catch (const std::exception& e) {
                spdlog::error("D-Bus: cannot publish module {}'s methods again: {}", module, e.what());
            }
        }
        spdlog::info("D-Bus: reconnected to {} and own {} again", bus, membrane::dbus::kServiceName);
        return;
    } catch (const std::exception& e) {
        impl_.reset();
        failure = e.what();
    }
    if (std::chrono::steady_clock::now() >= reconnect_deadline_) {
        on_gone_("the D-Bus connection to " + bus + " was lost and not re-established within " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kReconnectWindow).count()) +
                 " s (last attempt: " + failure + ")");
        return;
    }
    retry_.expires_after(kReconnectInterval);
    retry_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (!ec && !alive.expired()) retry_reconnect();
    });
}

}  // namespace membrane::kernel
