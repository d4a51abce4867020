// The bpf filesystem the pins live on.
#pragma once

#include <filesystem>

#include <spdlog/logger.h>

namespace membrane::kernel {

bool is_bpffs(const std::filesystem::path& path);

// Makes `root` a bpf filesystem: nothing to do if it already is one; an empty
// (or missing) folder gets a fresh bpffs mounted on it (mode 0700); anything
// else is refused, since mounting would hide its files. Returns true if it
// mounted.
bool ensure_bpffs(const std::filesystem::path& root, spdlog::logger& log);

}  // namespace membrane::kernel
