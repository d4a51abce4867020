// The network config membrane-cni reads on stdin, through what main() does
// with it: VERSION's answer, parse_network_config, and the text printed
// for the runtime (an error object, or the result passed on in chained mode).
// Anything thrown but a CniError is a bug (main would answer "internal error").
#include <cstddef>
#include <cstdint>
#include <string>

#include "cni_error.hpp"
#include "cni_result.hpp"
#include "cni_versions.hpp"
#include "fuzz_check.hpp"
#include "network_config.hpp"
#include "utf8.hpp"

using namespace membrane::cni;

namespace {

// What the runtime reads must be JSON (the plugin once aborted printing it).
void check_printable(const nlohmann::json& answer) {
    FUZZ_CHECK(!nlohmann::json::parse(runtime_text(answer), nullptr, false).is_discarded());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string version = peek_cni_version(text);
    check_printable(version_info_json(version));
    try {
        const NetworkConfig config = parse_network_config(text);
        FUZZ_CHECK(is_supported_version(config.cni_version));
        FUZZ_CHECK(network_name_problem(config.name).empty());
        FUZZ_CHECK(!first_invalid_utf8(text));
        if (config.prev_result) {
            check_printable(result_json(*config.prev_result, config.cni_version));
            check_printable(convert_result_json(*config.prev_result_json, config.cni_version));
            (void)find_pod_ipv4(*config.prev_result, "eth0");
        }
    } catch (const CniError& e) {
        FUZZ_CHECK(!e.msg().empty());
        check_printable(error_json(e, is_supported_version(version) ? version : kLatestVersion));
    }
    return 0;
}
