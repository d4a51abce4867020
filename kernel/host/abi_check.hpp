// Deciding whether a module's ABI descriptor is safe to call into.
#pragma once

#include <optional>
#include <string>

#include "membrane/abi.hpp"

namespace membrane::kernel {

// The agent's own descriptor (what it was compiled with).
const AbiDescriptor& host_abi_descriptor();

// A bounded read of a fixed-size descriptor field (it may lack its NUL).
std::string descriptor_field(const char* field, std::size_t size);

// nullopt when `module` may be loaded by `host`; otherwise why not, naming
// both sides. `expected_name` is the module's file name without ".so".
std::optional<std::string> check_abi(const AbiDescriptor& host, const AbiDescriptor& module,
                                     const std::string& expected_name);

}  // namespace membrane::kernel
