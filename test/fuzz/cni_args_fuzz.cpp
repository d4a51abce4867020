// CNI_ARGS ("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IgnoreUnknown=1"),
// parsed as membrane-cni does, and the pod labels it yields (sent to the
// agent over D-Bus, so they must be UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>

#include "cni_args.hpp"
#include "cni_error.hpp"
#include "cni_versions.hpp"
#include "fuzz_check.hpp"
#include "utf8.hpp"

using namespace membrane::cni;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const CniArgs args = parse_cni_args(text);
        for (const auto& [key, value] : args.labels()) {
            FUZZ_CHECK(!key.empty());
            FUZZ_CHECK(!first_invalid_utf8(value));
        }
    } catch (const CniError& e) {
        FUZZ_CHECK(!e.msg().empty());
        FUZZ_CHECK(!nlohmann::json::parse(runtime_text(error_json(e, kLatestVersion)), nullptr, false).is_discarded());
    }
    return 0;
}
