#include "host/abi_check.hpp"

#include <cstring>

namespace membrane::kernel {
namespace {

const AbiDescriptor kHost = MEMBRANE_ABI_DESCRIPTOR_INIT("membraned");

template <std::size_t N>
std::string field(const char (&f)[N]) {
    return descriptor_field(f, N);
}

std::string version(const AbiDescriptor& d) {
    return std::to_string(d.sdk_major) + "." + std::to_string(d.sdk_minor);
}

// GCC and Clang on Linux share the Itanium C++ ABI, so either may build a
// module for an agent built by the other; anything else we cannot vouch for.
bool itanium_abi_compiler(const std::string& compiler) {
    return compiler.rfind("gcc ", 0) == 0 || compiler.rfind("clang ", 0) == 0;
}

}  // namespace

const AbiDescriptor& host_abi_descriptor() { return kHost; }

std::string descriptor_field(const char* f, std::size_t size) { return std::string(f, strnlen(f, size)); }

std::optional<std::string> check_abi(const AbiDescriptor& host, const AbiDescriptor& module,
                                     const std::string& expected_name) {
    if (module.magic != kAbiMagic) {
        return "its membrane_abi_descriptor has no valid magic number (not built with the Membrane SDK)";
    }
    if (module.sdk_major != host.sdk_major) {
        return "it was built against Membrane SDK " + version(module) + " but this agent provides SDK " +
               version(host) + " (the major versions must match; rebuild the module against SDK " +
               std::to_string(host.sdk_major) + ".x)";
    }
    if (module.sdk_minor > host.sdk_minor) {
        return "it needs Membrane SDK " + version(module) + " but this agent provides only SDK " + version(host) +
               " (upgrade the agent or build against an older SDK)";
    }
    const std::string name = field(module.module_name);
    if (name != expected_name) {
        return "its descriptor names it '" + name + "' but the file is " + expected_name +
               ".so (a module's file is <name>.so)";
    }
    const std::string module_stdlib = field(module.stdlib);
    const std::string host_stdlib = field(host.stdlib);
    if (module_stdlib != host_stdlib) {
        return "it was built with C++ standard library '" + module_stdlib + "' but this agent uses '" +
               host_stdlib + "'";
    }
    const std::string module_compiler = field(module.compiler);
    const std::string host_compiler = field(host.compiler);
    if (!itanium_abi_compiler(module_compiler) || !itanium_abi_compiler(host_compiler)) {
        return "it was built with compiler '" + module_compiler + "' and this agent with '" + host_compiler +
               "', which are not known to share a C++ ABI";
    }
    return std::nullopt;
}

}  // namespace membrane::kernel
