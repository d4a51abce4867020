// The CNI_* variables of one invocation. The input is up to six values
// separated by NUL (a variable cannot hold one), for CNI_COMMAND,
// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH and CNI_ARGS in that
// order; a value not given is an unset variable.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cni_environment.hpp"
#include "cni_error.hpp"
#include "cni_versions.hpp"
#include "fuzz_check.hpp"
#include "utf8.hpp"

using namespace membrane::cni;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static constexpr std::array<std::string_view, 6> kNames = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS",
                                                                "CNI_IFNAME",  "CNI_PATH",        "CNI_ARGS"};
    std::array<std::optional<std::string>, kNames.size()> values;
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::size_t start = 0;
    for (std::size_t i = 0; i < values.size() && start <= input.size(); ++i) {
        const std::size_t end = std::min(input.find('\0', start), input.size());
        values[i] = std::string(input.substr(start, end - start));
        start = end + 1;
    }
    const EnvLookup lookup = [&](const char* name) -> std::optional<std::string> {
        for (std::size_t i = 0; i < kNames.size(); ++i)
            if (kNames[i] == name) return values[i];
        return std::nullopt;
    };

    try {
        const Environment env = read_environment(lookup);
        for (const auto* value : {&env.container_id, &env.netns, &env.ifname, &env.path, &env.args})
            FUZZ_CHECK(!first_invalid_utf8(*value));
        if (env.command == Command::Add || env.command == Command::Del || env.command == Command::Check) {
            FUZZ_CHECK(container_id_problem(env.container_id).empty());
            FUZZ_CHECK(interface_name_problem(env.ifname).empty());
        }
    } catch (const CniError& e) {
        FUZZ_CHECK(!e.msg().empty());
        FUZZ_CHECK(!nlohmann::json::parse(runtime_text(error_json(e, kLatestVersion)), nullptr, false).is_discarded());
    }
    return 0;
}
