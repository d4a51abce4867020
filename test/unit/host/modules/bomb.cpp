// A wrong ABI (SDK major 99) and a static constructor that aborts the process
// that loads it: a host that refuses it only after dlopen dies here.
#include <cstdlib>

#include <membrane/membrane.hpp>

namespace {
class Bomb final : public membrane::Module {
public:
    void start(membrane::Context&) override {}
};
}  // namespace

MEMBRANE_ABI_SECTION_ATTRIBUTES const membrane::AbiDescriptor bomb_descriptor = {
    membrane::kAbiMagic, sizeof(membrane::AbiDescriptor), 99, 0, "bomb", MEMBRANE_ABI_COMPILER, MEMBRANE_ABI_STDLIB,
    MEMBRANE_ABI_LIBRARIES};

__attribute__((constructor)) static void bomb_constructor() { std::abort(); }

extern "C" __attribute__((visibility("default"))) membrane::Module* membrane_create_module() { return new Bomb(); }
extern "C" __attribute__((visibility("default"))) void membrane_destroy_module(membrane::Module* m) { delete m; }
