// Deciding whether a module's ABI descriptor is safe to call into, and
// reading that descriptor from the module's file without loading it.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
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

// Why a file's descriptor could not be read (the file is then not loaded).
class AbiReadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads the descriptor from the ".membrane_abi" section of the shared
// library at `file` with libelf, without loading it: no code of the file
// runs. Throws AbiReadError saying what is wrong with the file.
AbiDescriptor read_abi_descriptor(const std::filesystem::path& file);

}  // namespace membrane::kernel
