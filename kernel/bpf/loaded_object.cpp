#include "bpf/loaded_object.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "bpf/libbpf_log.hpp"
#include "bpf/map_resize.hpp"

namespace membrane::kernel {

std::unique_ptr<LoadedObject> LoadedObject::open(std::span<const std::byte> elf, std::string name,
                                                 const std::filesystem::path& pin_dir, spdlog::logger& log,
                                                 const std::vector<BpfMapSize>& map_sizes,
                                                 const std::vector<MapResize>& staged) {
    if (elf.empty()) throw BpfError(fmt::format("object {}: the ELF is empty", name));
    const std::string pin_root = pin_dir.string();
    bpf_object_open_opts opts{};
    opts.sz = sizeof(opts);
    opts.object_name = name.c_str();
    opts.pin_root_path = pin_root.c_str();

    LibbpfLogCapture capture(log);
    BpfObjectPtr object(bpf_object__open_mem(elf.data(), elf.size(), &opts));
    if (!object) {
        const int err = errno;
        throw BpfError(with_errno(fmt::format("cannot open BPF object {}", name), err) + capture.warnings_tail(10));
    }

    std::unique_ptr<LoadedObject> loaded(new LoadedObject(std::move(object), std::move(name)));
    apply_map_sizes(loaded->object_.get(), loaded->name_, map_sizes);
    loaded->staged_resizes_ = resize_pinned_maps(loaded->object_.get(), loaded->name_, map_sizes, log, staged);
    loaded->pinned_maps_ = check_pinned_maps(loaded->object_.get(), loaded->name_);
    return loaded;
}

LoadedObject::~LoadedObject() { discard_resized_pins(staged_resizes_); }

void LoadedObject::load(spdlog::logger& log) {
    if (loaded_) return;
    LibbpfLogCapture capture(log);
    if (const int err = bpf_object__load(object_.get()); err) {
        throw BpfError(with_errno(fmt::format("cannot load BPF object {}", name_), err) +
                       capture.warnings_tail(25));
    }
    loaded_ = true;
}

void LoadedObject::repoint_pins(const std::vector<MapResize>& committed) {
    for (const auto& resize : committed) {
        bpf_map* map = bpf_object__find_map_by_name(object_.get(), resize.name.c_str());
        if (!map || !bpf_map__pin_path(map) || resize.staged_pin != bpf_map__pin_path(map)) continue;
        bpf_map__set_pin_path(map, resize.pin.c_str());  // stores the path: the map is pinned there now
        for (auto& plan : pinned_maps_) {
            if (plan.name == resize.name) plan.pin_path = resize.pin;
        }
    }
}

bpf_program* LoadedObject::program(std::string_view program_name) const {
    if (auto* found = bpf_object__find_program_by_name(object_.get(), std::string(program_name).c_str())) {
        return found;
    }
    std::string known;
    bpf_program* each = nullptr;
    bpf_object__for_each_program(each, object_.get()) {
        known += known.empty() ? "" : ", ";
        known += bpf_program__name(each);
    }
    throw BpfError(fmt::format("object {} has no program {} (it has: {})", name_, program_name, known));
}

int LoadedObject::program_fd(std::string_view program_name) const {
    const int fd = bpf_program__fd(program(program_name));
    if (fd < 0) throw BpfError(fmt::format("program {} of object {} is not loaded", program_name, name_));
    return fd;
}

int LoadedObject::map_fd(std::string_view map_name) const {
    const bpf_map* map = bpf_object__find_map_by_name(object_.get(), std::string(map_name).c_str());
    if (!map) {
        std::string known;
        bpf_map* each = nullptr;
        bpf_object__for_each_map(each, object_.get()) {
            known += known.empty() ? "" : ", ";
            known += bpf_map__name(each);
        }
        throw BpfError(fmt::format("object {} has no map {} (it has: {})", name_, map_name, known));
    }
    const int fd = bpf_map__fd(map);
    if (fd < 0) throw BpfError(fmt::format("map {} of object {} is not loaded", map_name, name_));
    return fd;
}

std::vector<std::string> LoadedObject::created_pins() const {
    std::vector<std::string> names;
    for (const auto& map : pinned_maps_) {
        if (!map.pin_exists) names.push_back(map.name);
    }
    std::ranges::sort(names);
    return names;
}

std::vector<std::string> LoadedObject::reused_pins() const {
    std::vector<std::string> names;
    for (const auto& map : pinned_maps_) {
        if (map.pin_exists) names.push_back(map.name);
    }
    std::ranges::sort(names);
    return names;
}

}  // namespace membrane::kernel
