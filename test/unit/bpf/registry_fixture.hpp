// The fixture every registry test starts from: its own bpffs, state folder
// and logger, and the BPF objects the tests load.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "bpf/registry.hpp"
#include "membrane/embed.hpp"
#include "sandbox.hpp"

MEMBRANE_EMBEDDED_BPF(membrane_core_bpf)
MEMBRANE_EMBEDDED_BPF(counter_stage_bpf)
MEMBRANE_EMBEDDED_BPF(counter_stage_wide_bpf)
MEMBRANE_EMBEDDED_BPF(rejected_stage_bpf)

namespace membrane::kernel::test {

inline constexpr std::uint32_t kCountStage = MBR_STAGE_CUSTOM_FIRST;

// The slots modules hold: slots() less the kernel's own (delivery).
inline std::vector<SlotInfo> module_slots(const Registry& registry) {
    auto slots = registry.slots();
    std::erase_if(slots, [](const SlotInfo& slot) { return slot.module == kKernelHolder; });
    return slots;
}

inline BpfObjectSpec counter_spec(std::vector<std::string> persistent = {}) {
    return BpfObjectSpec{.name = "counter", .elf = counter_stage_bpf(), .persistent_maps = std::move(persistent)};
}

class RegistryTest : public ::testing::Test {
protected:
    std::unique_ptr<Registry> make_registry() {
        return std::make_unique<Registry>(sandbox.bpffs(), sandbox.pin_dir(), sandbox.state_dir(), log.logger);
    }
    std::unique_ptr<Registry> make_core_registry() {
        auto registry = make_registry();
        registry->open_core(membrane_core_bpf());
        return registry;
    }
    std::filesystem::path pin(const std::string& name) const { return sandbox.pin_dir() / name; }

    BpffsSandbox sandbox;
    CapturedLog log;
};

}  // namespace membrane::kernel::test
