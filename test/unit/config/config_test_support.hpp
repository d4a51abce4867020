// What the config tests share: a fixed source path and the message of the
// ConfigError a text must raise.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "config/agent_config.hpp"

namespace membrane::kernel {

inline const std::filesystem::path kSource = "/etc/membrane/membrane.toml";

// The least a config holds; tests append the sections they are about.
inline const std::string kMinimalConfig = "[agent]\nnode_name = \"n1\"\n";

// The message of the ConfigError parsing `text` throws.
inline std::string error_of(std::string_view text) {
    try {
        parse_config(text, kSource);
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << text;
    return {};
}

}  // namespace membrane::kernel
