// membrane.toml, parsed and validated as membraned --check-config does
// (parse_config on the file's text). The only error it may throw is
// ConfigError; anything else would escape the daemon's config reload.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/agent_config.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const membrane::kernel::AgentConfig config = membrane::kernel::parse_config(text, "fuzz.toml");
        FUZZ_CHECK(!config.agent.node_name.empty());
        if (!config.nodes.empty()) FUZZ_CHECK(config.local_node() != nullptr);
    } catch (const membrane::ConfigError& e) {
        FUZZ_CHECK(e.what()[0] != '\0');
    }
    return 0;
}
