#include "bpf/map_shape.hpp"

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "bpf/unique_fd.hpp"

namespace membrane::kernel {

std::string MapShape::describe() const {
    const char* type_name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
    const std::string type_text = type_name ? type_name : fmt::format("type{}", type);
    return fmt::format("{} key={} value={} max={} flags={:#x}", type_text, key_size, value_size, max_entries, flags);
}

MapShape declared_shape(const bpf_map* map) {
    MapShape shape{
        .type = static_cast<std::uint32_t>(bpf_map__type(map)),
        .key_size = bpf_map__key_size(map),
        .value_size = bpf_map__value_size(map),
        .max_entries = bpf_map__max_entries(map),
        .flags = bpf_map__map_flags(map),
    };
    // libbpf sizes a perf event array with max_entries 0 to the CPU count at
    // load time; compare against what it will create.
    if (shape.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && shape.max_entries == 0) {
        const int cpus = libbpf_num_possible_cpus();
        if (cpus > 0) shape.max_entries = static_cast<std::uint32_t>(cpus);
    }
    return shape;
}

MapShape shape_of_fd(int map_fd) {
    bpf_map_info info{};
    std::uint32_t info_len = sizeof(info);
    if (const int err = bpf_obj_get_info_by_fd(map_fd, &info, &info_len); err) {
        throw_bpf_error("cannot read map info", err);
    }
    return MapShape{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags};
}

std::vector<PinnedMapPlan> check_pinned_maps(bpf_object* object, const std::string& object_name) {
    std::vector<PinnedMapPlan> plans;
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, object) {
        const char* pin_path = bpf_map__pin_path(map);
        if (!pin_path) continue;  // not pinned: private to this object
        PinnedMapPlan plan{.name = bpf_map__name(map), .pin_path = pin_path};

        const UniqueFd pinned(bpf_obj_get(pin_path));
        if (!pinned) {
            if (errno != ENOENT) {
                throw_bpf_error(fmt::format("object {}: cannot open pin {} of map {}", object_name, pin_path, plan.name),
                                errno);
            }
            plans.push_back(std::move(plan));
            continue;
        }
        plan.pin_exists = true;
        const MapShape on_disk = shape_of_fd(pinned.get());
        const MapShape wanted = declared_shape(map);
        if (on_disk != wanted) {
            throw BpfError(fmt::format(
                "map {} pinned at {} has {} but object {} wants {}; bump the version suffix in the map name "
                "or remove the pin",
                plan.name, pin_path, on_disk.describe(), object_name, wanted.describe()));
        }
        plans.push_back(std::move(plan));
    }
    return plans;
}

}  // namespace membrane::kernel
