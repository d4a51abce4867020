// The log levels membrane.toml accepts, shared by config validation and the
// logging setup so that both agree on the same five words.
#pragma once

#include <optional>
#include <string_view>

#include <spdlog/common.h>

namespace membrane::kernel {

inline constexpr std::string_view kLogLevelNames = "trace, debug, info, warn, error";

// spdlog's own from_str() maps any unknown word to "off"; this refuses it.
inline std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
    if (name == "trace") return spdlog::level::trace;
    if (name == "debug") return spdlog::level::debug;
    if (name == "info") return spdlog::level::info;
    if (name == "warn") return spdlog::level::warn;
    if (name == "error") return spdlog::level::err;
    return std::nullopt;
}

}  // namespace membrane::kernel
