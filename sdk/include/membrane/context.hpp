// Everything a module may touch. Everything registered through the Context is
// owned by the module's host and torn down when the module stops.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>
#include <toml++/toml.h>

#include "membrane/api.hpp"
#include "membrane/bpf.hpp"
#include "membrane/bus.hpp"
#include "membrane/model.hpp"

namespace membrane {

// A D-Bus method of a module: JSON text in, JSON text out. Throwing
// std::exception answers with the D-Bus error org.membrane.Error.ModuleMethod.
using MethodHandler = std::function<std::string(const std::string& request_json)>;

class MEMBRANE_SDK_API Context {
public:
    virtual ~Context() = default;

    virtual const std::string& module_name() const = 0;
    virtual Bus& bus() = 0;
    virtual const Model& model() const = 0;
    virtual BpfRegistry& bpf() = 0;
    // The module's own table, [module.<name>] in membrane.toml (may be empty).
    virtual const toml::table& config() const = 0;
    virtual spdlog::logger& log() = 0;
    // A folder only this module writes to; kept across restarts and reloads.
    virtual const std::filesystem::path& state_dir() const = 0;

    // Adds method `name` to the D-Bus object /org/membrane/Agent1/modules/<module>
    // on interface org.membrane.Module1, signature (s) -> (s). `name` must be a
    // valid D-Bus member name. Callable during start().
    virtual void add_method(std::string name, MethodHandler handler) = 0;

    // SDK 1.1. Bytes of encapsulation this module adds to pod traffic (VXLAN:
    // 50). Pods get MTU = agent MTU - the largest overhead declared by a
    // running module; released when the module stops.
    virtual void declare_encapsulation(std::uint32_t overhead_bytes) = 0;
};

}  // namespace membrane
