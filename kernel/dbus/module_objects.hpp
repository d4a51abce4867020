// The D-Bus objects of modules: /org/membrane/Agent1/modules/<module>, each
// with interface org.membrane.Module1 and the module's methods (s) -> (s).
// Every module method changes or reveals what the module decides, so each
// call passes CallerAccess (admins only) before the module sees it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <sdbus-c++/IConnection.h>
#include <sdbus-c++/IObject.h>

#include "dbus/caller_access.hpp"
#include "membrane/context.hpp"

namespace membrane::kernel {

class ModuleObjects {
public:
    ModuleObjects(boost::asio::io_context& io, sdbus::IConnection& connection, const CallerAccess& access);
    ~ModuleObjects();
    ModuleObjects(const ModuleObjects&) = delete;
    ModuleObjects& operator=(const ModuleObjects&) = delete;

    // Creates or replaces the module's object; an empty map removes it.
    // Throws ControlError(InvalidArgument) for a bad module or method name,
    // leaving the module's current object untouched.
    void set(const std::string& module, std::map<std::string, MethodHandler> methods);

private:
    void apply(const std::string& module, std::map<std::string, MethodHandler> methods);
    std::unique_ptr<sdbus::IObject> make_object(const std::string& module, const std::string& path,
                                                std::map<std::string, MethodHandler> methods);

    boost::asio::io_context& io_;
    sdbus::IConnection& connection_;
    const CallerAccess& access_;
    std::map<std::string, std::unique_ptr<sdbus::IObject>> objects_;  // by module
    // A module's object cannot be destroyed while one of its own methods
    // runs (that would free the running handler): such a change is deferred
    // to the loop, and later changes queue behind it to keep their order.
    std::map<std::string, int> dispatching_;
    std::map<std::string, int> deferred_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace membrane::kernel
