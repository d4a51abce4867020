// Map sizes chosen at load time (SDK 1.9 BpfMapSize), and what makes them
// safe with maps pinned by name: a pin whose shape differs from the
// declaration in max_entries alone is resized by migration (a new map of the
// declared shape, every entry copied, then put at the pin path in one
// rename once the object loaded) instead of being refused, so a changed size
// keeps the map's contents across a reload or a restart. Runs after the
// object is opened and before check_pinned_maps and the load, which then
// reuse the new map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "membrane/bpf.hpp"

struct bpf_object;

namespace membrane::kernel {

// Sets each named map's max_entries (bpf_map__set_max_entries) before load.
// A name the object does not declare, a size of 0 or a map named twice is a
// BpfError naming the object and the map; nothing is set then.
void apply_map_sizes(bpf_object* object, const std::string& object_name, const std::vector<BpfMapSize>& sizes);

// One pinned map resized by resize_pinned_maps: the new map is pinned at
// `staged_pin` until commit_resized_pins moves it over `pin`.
struct MapResize {
    std::string name;
    std::uint32_t old_max_entries = 0;
    std::uint32_t new_max_entries = 0;
    std::size_t entries_copied = 0;
    std::string pin;
    std::string staged_pin;
};

// Resizes every pinned map of `object` named in `sizes` whose pin differs
// from the declaration in max_entries alone (other differences, and maps the
// caller did not size, such as a core map whose declared size changed, are
// left to check_pinned_maps to refuse). Each map is checked (its type can be
// copied faithfully, its entries fit the new size), then each new map is made
// and filled, then pinned beside the old pin (`resizing-<name>`), with the
// object's map pointed at it, so the load reuses it. The old pins do not
// move: a refusal, a failed copy or a failed load leaves every pin, and the
// generation running on them, as it was (BpfError naming the map, its entry
// count and the new size).
// `staged`: the maps an earlier object of the same module generation resized
// and staged, not yet committed: this object's map is pointed at that staged
// pin (the same new map), not copied again.
std::vector<MapResize> resize_pinned_maps(bpf_object* object, const std::string& object_name,
                                          const std::vector<BpfMapSize>& sizes, spdlog::logger& log,
                                          const std::vector<MapResize>& staged = {});

// Once every object of the module generation loaded and the module
// started: each staged pin renamed over the old one (one rename(2) each).
// Logs one info line per map resized. The objects' maps are pointed back at
// the pin paths by their owner (LoadedObject::repoint_pins).
void commit_resized_pins(const std::string& who, const std::vector<MapResize>& resizes, spdlog::logger& log);

// The staged pins of an object or generation that did not load or start,
// removed (their maps go with the objects' last fds).
void discard_resized_pins(const std::vector<MapResize>& resizes);

}  // namespace membrane::kernel
