// One BPF ELF object opened with libbpf: its maps pinned by name under the
// node's pin folder (checked against existing pins first), then loaded.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/logger.h>

#include "bpf/map_resize.hpp"
#include "bpf/map_shape.hpp"
#include "bpf/unique_fd.hpp"
#include "membrane/bpf.hpp"

namespace membrane::kernel {

class LoadedObject final : public membrane::BpfObject {
public:
    // Opens the ELF, sizes the maps named in `map_sizes`, resizes the pins
    // that differ from the declarations in max entries alone (map_resize.hpp)
    // and checks every pinned map it declares against the pin on disk (see
    // check_pinned_maps). Nothing of the object is in the kernel yet.
    // `staged`: maps an earlier object of the same module generation resized
    // (their staged pins are reused, see resize_pinned_maps).
    static std::unique_ptr<LoadedObject> open(std::span<const std::byte> elf, std::string name,
                                              const std::filesystem::path& pin_dir, spdlog::logger& log,
                                              const std::vector<BpfMapSize>& map_sizes = {},
                                              const std::vector<MapResize>& staged = {});

    // Loads maps and programs: libbpf reuses the existing pins (a resized
    // map's staged one) and pins the maps it creates. On failure the
    // BpfError quotes libbpf's last warnings (the verifier's complaint,
    // usually); the staged pins this object made go with it.
    void load(spdlog::logger& log);

    // The maps this object resized, staged until the module's generation
    // started (ModuleBpf::commit_resized_pins): handed over once it loaded.
    std::vector<MapResize> take_staged_resizes() { return std::exchange(staged_resizes_, {}); }
    // After a commit: the maps pinned at a staged path are pinned at the real one.
    void repoint_pins(const std::vector<MapResize>& committed);

    ~LoadedObject() override;
    LoadedObject(const LoadedObject&) = delete;
    LoadedObject& operator=(const LoadedObject&) = delete;

    const std::string& name() const override { return name_; }
    int map_fd(std::string_view map) const override;
    int program_fd(std::string_view program) const override;

    bpf_program* program(std::string_view program) const;  // throws BpfError if absent
    // The maps pinned by name, with `pin_exists` as it was before the load.
    const std::vector<PinnedMapPlan>& pinned_maps() const { return pinned_maps_; }
    std::vector<std::string> created_pins() const;
    std::vector<std::string> reused_pins() const;

    // Who loaded it (a ModuleBpf generation, or the registry for the core):
    // lets attach_stage refuse an object that another module loaded.
    const void* owner = nullptr;

private:
    LoadedObject(BpfObjectPtr object, std::string name) : object_(std::move(object)), name_(std::move(name)) {}

    BpfObjectPtr object_;
    std::string name_;
    std::vector<PinnedMapPlan> pinned_maps_;
    std::vector<MapResize> staged_resizes_;  // until the load moves their pins
    bool loaded_ = false;
};

}  // namespace membrane::kernel
