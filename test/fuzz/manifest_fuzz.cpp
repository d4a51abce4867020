// `membranectl apply -f` text, parsed and checked as the agent does
// (parse_manifests). The only error it may throw is ManifestError; anything
// else (a yaml-cpp exception, a JSON type error) would fail the D-Bus call
// with an unhelpful message. What it accepts must read back from the store
// unchanged (manifest_from_document), as every other node reads it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "objects/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        for (const auto& manifest : membrane::kernel::parse_manifests(text, "fuzz.yaml")) {
            FUZZ_CHECK(!manifest.ref.name.empty());
            const auto again = membrane::kernel::manifest_from_document(manifest.document, "store");
            FUZZ_CHECK(again.document == manifest.document);
            FUZZ_CHECK(again.ref == manifest.ref);
        }
    } catch (const membrane::kernel::ManifestError& e) {
        FUZZ_CHECK(e.what()[0] != '\0');
    }
    return 0;
}
