// What the control plane (D-Bus service) may ask of the agent. The D-Bus
// layer depends only on this, so it is tested against a fake.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace membrane::kernel {

// Failure classes that map one-to-one onto D-Bus error names
// org.membrane.Error.<Name>.
enum class ControlErrorKind {
    NotFound,         // no such module file / module not loaded
    AlreadyLoaded,    // load of a module that is loaded
    AbiMismatch,      // descriptor refused
    StartFailed,      // start() threw; old generation (if any) still running
    InvalidArgument,  // bad name or request
    Failed,           // anything else
};

class ControlError : public std::runtime_error {
public:
    ControlError(ControlErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ControlErrorKind kind() const { return kind_; }

private:
    ControlErrorKind kind_;
};

const char* control_error_name(ControlErrorKind kind);  // "NotFound" etc.

struct ModuleStatus {
    std::string name;
    std::string state;  // loading | running | stopped | failed
    std::uint64_t generation = 0;
    std::string path;     // the library it was loaded from
    std::string sdk;      // "1.0"
    std::string message;  // last error, if any
    std::vector<std::uint32_t> stages;  // pipeline slots it holds
};

struct AgentStatus {
    std::string node;
    std::string version;
    std::string state;  // starting | running | stopping
    std::uint64_t uptime_seconds = 0;
    std::string pin_dir;
    std::string config_path;
    std::vector<std::string> devices;  // interfaces with the entry program
    std::uint32_t modules_running = 0;
    std::uint32_t modules_failed = 0;
};

class AgentControl {
public:
    virtual ~AgentControl() = default;
    virtual AgentStatus status() const = 0;
    virtual std::vector<ModuleStatus> modules() const = 0;
    // All throw ControlError.
    virtual void load_module(const std::string& name) = 0;
    virtual void unload_module(const std::string& name) = 0;
    virtual void reload_module(const std::string& name) = 0;
};

}  // namespace membrane::kernel

#include <map>

#include "membrane/context.hpp"

namespace membrane::kernel {

// Where the module host publishes the D-Bus methods a module added through
// its Context. Implemented by the D-Bus service: object
// /org/membrane/Agent1/modules/<module>, interface org.membrane.Module1.
class ModuleMethodSink {
public:
    virtual ~ModuleMethodSink() = default;
    // Replaces the module's methods (an empty map removes its object).
    virtual void set_module_methods(const std::string& module, std::map<std::string, MethodHandler> methods) = 0;
};

}  // namespace membrane::kernel
