// The shape of a BPF map (what the kernel fixes at creation and libbpf
// compares before it reuses a pin), and the check that runs before any object
// is loaded: every map the object pins by name must match the pin on disk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

struct bpf_map;
struct bpf_object;

namespace membrane::kernel {

// type, key, value, max entries, flags: what libbpf compares before reuse.
struct MapShape {
    std::uint32_t type = 0;
    std::uint32_t key_size = 0;
    std::uint32_t value_size = 0;
    std::uint32_t max_entries = 0;
    std::uint32_t flags = 0;
    bool operator==(const MapShape&) const = default;
    std::string describe() const;  // "hash key=4 value=8 max=1024 flags=0x0"
};

// What the object asks for (after libbpf's open-time adjustments).
MapShape declared_shape(const bpf_map* map);
// What the kernel reports for an open map fd; throws BpfError.
MapShape shape_of_fd(int map_fd);

// One map of an object that libbpf pins by name (pinning = LIBBPF_PIN_BY_NAME).
struct PinnedMapPlan {
    std::string name;
    std::filesystem::path pin_path;
    bool pin_exists = false;  // reused by libbpf at load; otherwise created by this load
};

// Lists the object's pinned maps and refuses (BpfError naming the map, the pin
// path and both shapes) when an existing pin differs from the declaration.
// libbpf would refuse too, but with a message that names neither.
std::vector<PinnedMapPlan> check_pinned_maps(bpf_object* object, const std::string& object_name);

}  // namespace membrane::kernel
