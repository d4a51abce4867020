#include "bpf/map_resize.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <utility>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf/bpf_error.hpp"
#include "bpf/map_shape.hpp"
#include "bpf/unique_fd.hpp"

namespace membrane::kernel {
namespace {

std::string declared_map_names(bpf_object* object) {
    std::string names;
    bpf_map* each = nullptr;
    bpf_object__for_each_map(each, object) {
        if (bpf_map__is_internal(each)) continue;
        names += names.empty() ? "" : ", ";
        names += bpf_map__name(each);
    }
    return names;
}

// How an entry of a map type is carried into a new map, for the types whose
// entries user space can read and write back unchanged. Others (prog and
// perf event arrays, ring buffers, socket and device maps, storages, stacks)
// hold kernel objects or state a copy would lose.
enum class ValueKind {
    bytes,     // value_size bytes
    per_cpu,   // value_size rounded up to 8, once per possible CPU
    map_id,    // a map-in-map: read as the inner map's id, written as an fd
};
struct CopyRule {
    ValueKind value;
    bool array;  // every index exists: it can grow, never shrink
};

std::optional<CopyRule> copy_rule(std::uint32_t type) {
    switch (type) {
        case BPF_MAP_TYPE_HASH:
        case BPF_MAP_TYPE_LRU_HASH:  // copied as they are: recency is not carried
        case BPF_MAP_TYPE_LPM_TRIE: return CopyRule{ValueKind::bytes, false};
        case BPF_MAP_TYPE_PERCPU_HASH:
        case BPF_MAP_TYPE_LRU_PERCPU_HASH: return CopyRule{ValueKind::per_cpu, false};
        case BPF_MAP_TYPE_HASH_OF_MAPS: return CopyRule{ValueKind::map_id, false};
        case BPF_MAP_TYPE_ARRAY: return CopyRule{ValueKind::bytes, true};
        case BPF_MAP_TYPE_PERCPU_ARRAY: return CopyRule{ValueKind::per_cpu, true};
        case BPF_MAP_TYPE_ARRAY_OF_MAPS: return CopyRule{ValueKind::map_id, true};
        default: return std::nullopt;
    }
}

std::string map_type_name(std::uint32_t type) {
    const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
    return name ? name : fmt::format("type{}", type);
}

bpf_map_info map_info(int fd, const std::string& what) {
    bpf_map_info info{};
    std::uint32_t length = sizeof(info);
    if (const int err = bpf_obj_get_info_by_fd(fd, &info, &length); err) throw_bpf_error("cannot read " + what, err);
    return info;
}

std::size_t value_buffer_size(const bpf_map_info& info, ValueKind kind) {
    if (kind != ValueKind::per_cpu) return info.value_size;
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) throw_bpf_error("cannot count the possible CPUs", cpus);
    return ((info.value_size + 7) / 8 * 8) * static_cast<std::size_t>(cpus);
}

// Calls each(key) for every key of the map. A hash map's walk starts over
// when the key it stands on is deleted under it (the datapath keeps writing
// a live map), so a walk is bounded and may meet a key twice.
template <class Each>
void for_each_key(int fd, const bpf_map_info& info, const std::string& name, Each&& each) {
    std::vector<std::byte> key(info.key_size);
    std::vector<std::byte> next(info.key_size);
    const std::size_t limit = 4 * static_cast<std::size_t>(info.max_entries) + 1024;
    const void* previous = nullptr;
    for (std::size_t visited = 0;; ++visited) {
        const int err = bpf_map_get_next_key(fd, previous, next.data());
        if (err == -ENOENT) return;
        if (err) throw_bpf_error(fmt::format("cannot walk map {}", name), err);
        if (visited > limit) {
            throw BpfError(fmt::format("map {} changed faster than it could be walked ({} keys visited)", name, visited));
        }
        each(next.data());
        std::swap(key, next);
        previous = key.data();
    }
}

// Calls each(keys, values, n) for the map's entries, thousands a syscall
// (BPF_MAP_LOOKUP_BATCH), so that millions of entries take a second rather
// than a minute of the agent's loop (its watchdog allows 30 s). False,
// having called nothing, when the kernel has no batch ops for this map type
// (an LPM trie, say): the caller walks key by key. A hash map's batch walk
// goes bucket by bucket, so it meets each key once.
template <class Each>
bool for_each_batch(int fd, const bpf_map_info& info, std::size_t value_size, const std::string& name, Each&& each) {
    constexpr std::uint32_t kBatch = 4096;
    std::vector<std::byte> keys(static_cast<std::size_t>(info.key_size) * kBatch);
    std::vector<std::byte> values(value_size * kBatch);
    // The position between calls: a bucket number for a hash map, a key for an array.
    const std::size_t token_size = std::max<std::size_t>(info.key_size, sizeof(std::uint64_t));
    std::vector<std::byte> in(token_size);
    std::vector<std::byte> out(token_size);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    for (bool first = true;; first = false) {
        std::uint32_t count = kBatch;
        const int err = bpf_map_lookup_batch(fd, first ? nullptr : in.data(), out.data(), keys.data(), values.data(),
                                             &count, &opts);
        if (err && err != -ENOENT) {
            if (first && (err == -EINVAL || err == -EOPNOTSUPP || err == -524 /* the kernel's ENOTSUPP */)) {
                return false;
            }
            throw_bpf_error(fmt::format("cannot read map {} in batches", name), err);
        }
        if (count > 0) each(keys.data(), values.data(), count);
        if (err == -ENOENT) return true;  // the last batch
        std::swap(in, out);
    }
}

std::size_t count_entries(int fd, const bpf_map_info& info, ValueKind kind, const std::string& name) {
    std::vector<std::byte> value(value_buffer_size(info, kind));
    std::size_t count = 0;
    if (kind != ValueKind::map_id &&
        for_each_batch(fd, info, value.size(), name, [&](const std::byte*, const std::byte*, std::uint32_t n) {
            count += n;
        })) {
        return count;
    }
    for_each_key(fd, info, name, [&](const void* key) {
        // An array of maps has every index, but only the filled ones hold a map.
        if (kind != ValueKind::map_id || bpf_map_lookup_elem(fd, key, value.data()) == 0) ++count;
    });
    return count;
}

// One pinned map to resize, from the check to the swap.
struct Migration {
    bpf_map* declared = nullptr;
    std::string name;
    std::string pin;
    UniqueFd old_map;
    bpf_map_info info{};
    std::uint32_t new_max_entries = 0;
    CopyRule rule{};
    std::size_t entries = 0;
    UniqueFd new_map;
    std::size_t copied = 0;
};

std::string resize_text(const Migration& m) {
    return fmt::format("map {} pinned at {} ({} entries, max {} -> {})", m.name, m.pin, m.entries,
                       m.info.max_entries, m.new_max_entries);
}

bool is_lru(std::uint32_t type) {
    return type == BPF_MAP_TYPE_LRU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// The size an LRU needs to take `entries` without evicting one: the kernel
// keeps free entries in per-CPU lists (bpf_lru_list.c's LOCAL_FREE_TARGET,
// 128 each, taken in batches), and with BPF_F_NO_COMMON_LRU every CPU owns
// its share of the map. Room for both, and a quarter on top.
std::size_t lru_room(const bpf_map_info& info, std::size_t entries) {
    const auto cpus = static_cast<std::size_t>(std::max(libbpf_num_possible_cpus(), 1));
    if (info.map_flags & BPF_F_NO_COMMON_LRU) return entries * cpus + entries / 4;
    return entries + entries / 4 + 256 * cpus;
}

// The pinned map, checked: its type can be copied and its entries fit.
// nullopt when the pin is absent or differs in more than max_entries.
std::optional<Migration> plan(bpf_map* map, const std::string& object_name) {
    const char* pin_path = bpf_map__pin_path(map);
    if (!pin_path) return std::nullopt;
    Migration m{.declared = map, .name = bpf_map__name(map), .pin = pin_path};
    m.old_map = UniqueFd(bpf_obj_get(pin_path));
    if (!m.old_map) return std::nullopt;  // absent: created by the load; unreadable: check_pinned_maps says why
    const MapShape on_disk = shape_of_fd(m.old_map.get());
    MapShape wanted = declared_shape(map);
    if (on_disk == wanted) return std::nullopt;
    m.new_max_entries = wanted.max_entries;
    wanted.max_entries = on_disk.max_entries;
    if (on_disk != wanted) return std::nullopt;  // another difference: refused by check_pinned_maps

    m.info = map_info(m.old_map.get(), "map " + m.name);
    const auto rule = copy_rule(m.info.type);
    if (!rule || m.info.ifindex != 0) {
        throw BpfError(fmt::format("map {} pinned at {} has max {} entries but object {} wants {}: a {} map cannot "
                                   "be resized by copying its entries (they hold kernel objects or state a copy "
                                   "would lose); bump the version suffix in the map name or remove the pin",
                                   m.name, m.pin, m.info.max_entries, object_name, m.new_max_entries,
                                   map_type_name(m.info.type) + (m.info.ifindex != 0 ? " offloaded" : "")));
    }
    m.rule = *rule;
    if (m.rule.array && m.new_max_entries < m.info.max_entries) {
        throw BpfError(fmt::format("map {} pinned at {} is an array of {} entries and object {} wants {}: an array "
                                   "keeps every index, so shrinking it would drop indexes {} to {}; nothing was "
                                   "changed",
                                   m.name, m.pin, m.info.max_entries, object_name, m.new_max_entries,
                                   m.new_max_entries, m.info.max_entries - 1));
    }
    m.entries = count_entries(m.old_map.get(), m.info, m.rule.value, m.name);
    if (is_lru(m.info.type) && m.entries > 0 && lru_room(m.info, m.entries) > m.new_max_entries) {
        throw BpfError(fmt::format("map {} pinned at {} is an LRU holding {} entries; object {} sizes it to {}, but an "
                                   "LRU evicts before it is full (its free entries sit in per-CPU lists), so a copy "
                                   "into fewer than {} would silently lose some: nothing was changed (the pin keeps "
                                   "its {} entries)",
                                   m.name, m.pin, m.entries, object_name, m.new_max_entries,
                                   lru_room(m.info, m.entries), m.info.max_entries));
    }
    if (!m.rule.array && m.entries > m.new_max_entries) {
        throw BpfError(fmt::format("map {} pinned at {} holds {} entries, more than the {} object {} sizes it to; "
                                   "nothing was changed (the pin keeps its {} entries)",
                                   m.name, m.pin, m.entries, m.new_max_entries, object_name, m.info.max_entries));
    }
    return m;
}

// A new map of the declared shape, as libbpf would make it: the same type,
// key, value and flags, the BTF the pinned map carries (libbpf made it from
// the same declaration), and for a map-in-map the declared inner map as the
// template its values are checked against.
UniqueFd create_resized(const Migration& m) {
    bpf_map_create_opts opts{};
    opts.sz = sizeof(opts);
    opts.map_flags = m.info.map_flags;
    opts.map_extra = m.info.map_extra;
    UniqueFd btf;
    if (m.info.btf_id != 0) {
        btf = UniqueFd(bpf_btf_get_fd_by_id(m.info.btf_id));
        if (!btf) throw_bpf_error(fmt::format("{}: cannot open its BTF (id {})", resize_text(m), m.info.btf_id), errno);
        opts.btf_fd = static_cast<std::uint32_t>(btf.get());
        opts.btf_key_type_id = m.info.btf_key_type_id;
        opts.btf_value_type_id = m.info.btf_value_type_id;
    }
    UniqueFd inner_template;
    if (m.rule.value == ValueKind::map_id) {
        bpf_map* inner = bpf_map__inner_map(m.declared);
        if (!inner) throw BpfError(fmt::format("{}: its declaration has no inner map to take as template", resize_text(m)));
        bpf_map_create_opts inner_opts{};
        inner_opts.sz = sizeof(inner_opts);
        inner_opts.map_flags = bpf_map__map_flags(inner);
        inner_template = UniqueFd(bpf_map_create(bpf_map__type(inner), "resize_inner", bpf_map__key_size(inner),
                                                 bpf_map__value_size(inner), bpf_map__max_entries(inner), &inner_opts));
        if (!inner_template) throw_bpf_error(fmt::format("{}: cannot make its inner map template", resize_text(m)), errno);
        opts.inner_map_fd = static_cast<std::uint32_t>(inner_template.get());
    }
    UniqueFd created(bpf_map_create(static_cast<bpf_map_type>(m.info.type), m.info.name, m.info.key_size,
                                    m.info.value_size, m.new_max_entries, &opts));
    if (!created) throw_bpf_error(fmt::format("{}: cannot create the new map", resize_text(m)), errno);
    return created;  // the template goes: the outer map keeps its own copy of the inner shape
}

// Copies in batches (one BPF_MAP_UPDATE_BATCH per BPF_MAP_LOOKUP_BATCH):
// false when the map type has none, having copied nothing.
bool copy_in_batches(Migration& m) {
    if (m.rule.value == ValueKind::map_id) return false;  // ids to reopen as fds, one by one
    const int to = m.new_map.get();
    std::size_t written = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const bool batched = for_each_batch(
        m.old_map.get(), m.info, value_buffer_size(m.info, m.rule.value), m.name,
        [&](const std::byte* keys, const std::byte* values, std::uint32_t n) {
            std::uint32_t count = n;
            // A hash map full here grew past the new size since it was counted.
            if (const int err = bpf_map_update_batch(to, keys, values, &count, &opts); err) {
                throw_bpf_error(fmt::format("{}: cannot copy entries {} to {} into the new map; nothing was changed",
                                            resize_text(m), written + count + 1, written + n),
                                err);
            }
            written += n;
        });
    // An LRU may evict on the way in: count what the new map holds.
    m.copied = batched && is_lru(m.info.type)
                   ? count_entries(to, map_info(to, "the new map " + m.name), m.rule.value, m.name)
                   : written;
    return batched;
}

void copy_entries(Migration& m) {
    if (copy_in_batches(m)) return;
    const int from = m.old_map.get();
    const int to = m.new_map.get();
    std::vector<std::byte> value(value_buffer_size(m.info, m.rule.value));
    std::size_t written = 0;
    for_each_key(from, m.info, m.name, [&](const void* key) {
        int err = bpf_map_lookup_elem(from, key, value.data());
        if (err == -ENOENT) return;  // deleted since the walk met it, or an empty index of an array of maps
        if (err) throw_bpf_error(fmt::format("{}: cannot read an entry", resize_text(m)), err);
        if (m.rule.value == ValueKind::map_id) {
            std::uint32_t inner_id = 0;
            std::memcpy(&inner_id, value.data(), sizeof(inner_id));
            const UniqueFd inner(bpf_map_get_fd_by_id(inner_id));
            if (!inner) {
                if (errno == ENOENT) return;  // the inner map went with its entry
                throw_bpf_error(fmt::format("{}: cannot open inner map {}", resize_text(m), inner_id), errno);
            }
            const int inner_fd = inner.get();
            err = bpf_map_update_elem(to, key, &inner_fd, BPF_ANY);
        } else {
            err = bpf_map_update_elem(to, key, value.data(), BPF_ANY);
        }
        // A hash map full here grew past the new size since it was counted.
        if (err) {
            throw_bpf_error(fmt::format("{}: cannot copy entry {} into the new map; nothing was changed",
                                        resize_text(m), written + 1),
                            err);
        }
        ++written;
    });
    // A walk may meet a key twice (see for_each_key): count what the new map holds.
    m.copied = m.rule.array ? written : count_entries(to, map_info(to, "the new map " + m.name), m.rule.value, m.name);
}

// Where a new map is pinned before it moves over the old pin (bpffs refuses
// names with a dot, hence the dash, which no map name has).
std::filesystem::path staged_pin(const std::filesystem::path& pin) {
    return pin.parent_path() / ("resizing-" + pin.filename().string());
}

// A staged pin left by a run that died between pinning and the rename holds
// a whole map (a large LRU's memory): it goes at the next load that sizes it.
void remove_staged_pin(bpf_map* map) {
    if (const char* pin = bpf_map__pin_path(map)) ::unlink(staged_pin(pin).c_str());
}

// The new map is pinned beside the old pin, and the object's map is pointed
// at that staged pin, so the load reuses the new map while the old pin (what
// the running generation and every reader of the path meet) stays as it is
// until the load succeeds (commit_resized_pins).
void stage_pin(const Migration& m) {
    const auto staged = staged_pin(m.pin);
    if (const int err = bpf_obj_pin(m.new_map.get(), staged.c_str()); err) {
        throw_bpf_error(fmt::format("{}: cannot pin the new map at {}", resize_text(m), staged.string()), err);
    }
    if (const int err = bpf_map__set_pin_path(m.declared, staged.c_str()); err) {
        ::unlink(staged.c_str());
        throw_bpf_error(fmt::format("{}: cannot point the object's map at {}", resize_text(m), staged.string()), err);
    }
}

}  // namespace

void apply_map_sizes(bpf_object* object, const std::string& object_name, const std::vector<BpfMapSize>& sizes) {
    std::set<std::string> named;
    std::vector<std::pair<bpf_map*, std::uint32_t>> sized;
    for (const auto& size : sizes) {
        bpf_map* map = bpf_object__find_map_by_name(object, size.map.c_str());
        if (!map || bpf_map__is_internal(map)) {
            throw BpfError(fmt::format("object {} has no map {} to size (it has: {})", object_name, size.map,
                                       declared_map_names(object)));
        }
        if (size.max_entries == 0) {
            throw BpfError(fmt::format("object {}: map {} cannot be sized to 0 entries", object_name, size.map));
        }
        if (!named.insert(size.map).second) {
            throw BpfError(fmt::format("object {}: map {} is sized twice", object_name, size.map));
        }
        sized.emplace_back(map, size.max_entries);
    }
    for (const auto& [map, max_entries] : sized) {
        if (const int err = bpf_map__set_max_entries(map, max_entries); err) {
            throw_bpf_error(fmt::format("object {}: cannot size map {} to {} entries", object_name,
                                        bpf_map__name(map), max_entries),
                            err);
        }
    }
}

std::vector<MapResize> resize_pinned_maps(bpf_object* object, const std::string& object_name,
                                          const std::vector<BpfMapSize>& sizes, spdlog::logger& log,
                                          const std::vector<MapResize>& staged_before) {
    // 1. Check every map before anything is made, so a refusal changes nothing.
    std::vector<Migration> migrations;
    for (const auto& size : sizes) {
        bpf_map* map = bpf_object__find_map_by_name(object, size.map.c_str());
        if (!map) continue;  // apply_map_sizes refused it already
        const auto earlier = std::ranges::find(staged_before, size.map, &MapResize::name);
        if (earlier != staged_before.end()) {
            // check_pinned_maps then compares the staged map with this object's declaration.
            if (const int err = bpf_map__set_pin_path(map, earlier->staged_pin.c_str()); err) {
                throw_bpf_error(fmt::format("object {}: cannot point map {} at {}", object_name, size.map,
                                            earlier->staged_pin),
                                err);
            }
            continue;
        }
        remove_staged_pin(map);
        if (auto migration = plan(map, object_name)) migrations.push_back(std::move(*migration));
    }
    // 2. Make and fill the new maps; a failure closes them, the pins untouched.
    for (auto& m : migrations) {
        m.new_map = create_resized(m);
        copy_entries(m);
    }
    // 3. Pin them beside the old pins, which move only once the object loads.
    std::vector<MapResize> staged;
    try {
        for (const auto& m : migrations) {
            stage_pin(m);
            staged.push_back(MapResize{m.name, m.info.max_entries, m.new_max_entries, m.copied, m.pin,
                                       staged_pin(m.pin).string()});
        }
    } catch (...) {
        discard_resized_pins(staged);
        throw;
    }
    log.debug("object {}: {} map(s) resized and staged until it loads", object_name, staged.size());
    return staged;
}

// bpffs implements rename(2) (simple_rename), and rename over an existing
// name replaces it atomically: a reader of the pin path meets the old map or
// the new one, never none.
void commit_resized_pins(const std::string& who, const std::vector<MapResize>& resizes, spdlog::logger& log) {
    for (const auto& resize : resizes) {
        if (::rename(resize.staged_pin.c_str(), resize.pin.c_str()) != 0) {
            const int err = errno;
            throw_bpf_error(fmt::format("{}: cannot move the resized map {}'s pin {} over {}", who, resize.name,
                                        resize.staged_pin, resize.pin),
                            err);
        }
        log.info("map {} resized from {} to {} entries for {}: {} entries copied, pinned at {}", resize.name,
                 resize.old_max_entries, resize.new_max_entries, who, resize.entries_copied, resize.pin);
    }
}

void discard_resized_pins(const std::vector<MapResize>& resizes) {
    for (const auto& resize : resizes) ::unlink(resize.staged_pin.c_str());
}

}  // namespace membrane::kernel
