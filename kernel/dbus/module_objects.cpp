#include "dbus/module_objects.hpp"

#include <exception>
#include <utility>

#include <boost/asio/post.hpp>

#include "agent/agent_control.hpp"
#include "membrane/dbus/names.hpp"

namespace membrane::kernel {
namespace {

class DispatchGuard {
public:
    DispatchGuard(std::map<std::string, int>& dispatching, const std::string& module)
        : dispatching_(dispatching), module_(module) {
        ++dispatching_[module_];
    }
    ~DispatchGuard() {
        if (--dispatching_[module_] == 0) dispatching_.erase(module_);
    }
    DispatchGuard(const DispatchGuard&) = delete;
    DispatchGuard& operator=(const DispatchGuard&) = delete;

private:
    std::map<std::string, int>& dispatching_;
    const std::string& module_;
};

}  // namespace

ModuleObjects::ModuleObjects(boost::asio::io_context& io, sdbus::IConnection& connection, const CallerAccess& access)
    : io_(io), connection_(connection), access_(access) {}

ModuleObjects::~ModuleObjects() = default;

void ModuleObjects::set(const std::string& module, std::map<std::string, MethodHandler> methods) {
    const auto path = membrane::dbus::module_object_path(module);
    // Removal never fails: the host calls it on every unload and quarantine.
    if (path.empty() && methods.empty()) return;
    if (path.empty())
        throw ControlError(ControlErrorKind::InvalidArgument,
                           "module name '" + module + "' cannot name a D-Bus object (use [A-Za-z0-9_-])");
    for (const auto& [name, handler] : methods) {
        if (!membrane::dbus::is_valid_member_name(name))
            throw ControlError(ControlErrorKind::InvalidArgument,
                               "module " + module + ": '" + name + "' is not a valid D-Bus method name");
        if (!handler)
            throw ControlError(ControlErrorKind::InvalidArgument, "module " + module + ": method " + name + " has no handler");
    }
    for (const auto& [other, object] : objects_) {
        if (other != module && object->getObjectPath() == path)
            throw ControlError(ControlErrorKind::InvalidArgument,
                               "module " + module + ": object path " + path + " is taken by module " + other);
    }

    if (dispatching_.contains(module) || deferred_.contains(module)) {
        ++deferred_[module];
        boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), module, methods = std::move(methods)]() mutable {
            if (alive.expired()) return;
            if (--deferred_[module] == 0) deferred_.erase(module);
            apply(module, std::move(methods));
        });
        return;
    }
    apply(module, std::move(methods));
}

void ModuleObjects::apply(const std::string& module, std::map<std::string, MethodHandler> methods) {
    // Remove first: the new object reuses the path.
    objects_.erase(module);
    if (methods.empty()) return;
    auto path = membrane::dbus::module_object_path(module);
    objects_.emplace(module, make_object(module, path, std::move(methods)));
}

std::unique_ptr<sdbus::IObject> ModuleObjects::make_object(const std::string& module, const std::string& path,
                                                           std::map<std::string, MethodHandler> methods) {
    auto object = sdbus::createObject(connection_, path);
    sdbus::IObject* self = object.get();  // the handlers live inside it
    for (auto& [name, handler] : methods) {
        object->registerMethod(name)
            .onInterface(membrane::dbus::kModuleInterface)
            .withInputParamNames("request_json")
            .withOutputParamNames("reply_json")
            .implementedAs([this, self, module, handler = std::move(handler)](const std::string& request) -> std::string {
                const sdbus::Message* call = self->getCurrentlyProcessedMessage();
                if (!call) throw sdbus::Error(membrane::dbus::kModuleMethodError, "no D-Bus call is being processed");
                access_.check(*call);  // throws AccessDenied for anyone but an admin
                DispatchGuard guard(dispatching_, module);
                try {
                    return handler(request);
                } catch (const std::exception& e) {
                    throw sdbus::Error(membrane::dbus::kModuleMethodError, e.what());
                } catch (...) {
                    throw sdbus::Error(membrane::dbus::kModuleMethodError, "module method threw a non-standard exception");
                }
            });
    }
    object->finishRegistration();
    return object;
}

}  // namespace membrane::kernel
