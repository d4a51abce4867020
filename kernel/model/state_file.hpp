// The model's files in state_dir: JSON documents replaced atomically (write
// a temporary file, fsync, rename over, fsync the folder), so a crash at any
// instant leaves either the old or the new document, never half of one.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace membrane::kernel {

// A state file that cannot be read or written, or holds what the agent did
// not write. The message starts with the file's path.
class StateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws StateError.
void write_state_file(const std::filesystem::path& path, const nlohmann::json& document);
// nullopt when the file does not exist; StateError when it is not JSON.
std::optional<nlohmann::json> read_state_file(const std::filesystem::path& path);

}  // namespace membrane::kernel
