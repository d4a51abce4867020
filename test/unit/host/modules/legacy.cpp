// A module as SDK 1.1 made it: the descriptor exported as the symbol
// membrane_abi_descriptor (readable only after dlopen), no .membrane_abi
// section. The host must refuse it, saying which SDK built it.
#include <cstdint>

#include <membrane/membrane.hpp>

namespace {
class Legacy final : public membrane::Module {
public:
    void start(membrane::Context&) override {}
};

// The SDK 1.1 layout.
struct LegacyDescriptor {
    std::uint32_t magic;
    std::uint32_t sdk_major;
    std::uint32_t sdk_minor;
    char module_name[64];
    char compiler[64];
    char stdlib[64];
};
}  // namespace

extern "C" __attribute__((visibility("default"))) const LegacyDescriptor membrane_abi_descriptor = {
    membrane::kAbiMagic, 1, 1, "legacy", MEMBRANE_ABI_COMPILER, MEMBRANE_ABI_STDLIB};
extern "C" __attribute__((visibility("default"))) membrane::Module* membrane_create_module() { return new Legacy(); }
extern "C" __attribute__((visibility("default"))) void membrane_destroy_module(membrane::Module* m) { delete m; }
