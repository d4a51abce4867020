// The last known state a cluster part keeps on disk, so that while the store
// is away, and across a restart, the datapath keeps what it held: one state
// file {"format": 1, "root": "membrane/v1/<cluster>/", "<field>": [...]}.
// The root ties it to its cluster: a cache of another one is refused.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cluster/cluster_keys.hpp"

namespace membrane::kernel {

// The items of `field`, or nullopt when there is no cache yet. Throws
// StateError (corrupt_record) naming the file for another format or
// cluster, or a document the agent did not write.
std::optional<nlohmann::json> read_cluster_cache(const std::filesystem::path& file, const ClusterKeys& keys,
                                                 const char* field);
// Atomically (write_state_file); throws StateError.
void write_cluster_cache(const std::filesystem::path& file, const ClusterKeys& keys, const char* field,
                         nlohmann::json items);
// The same with the items given as text: each one JSON value, comma-separated
// (a large cache is put together item by item, not copied whole into JSON).
void write_cluster_cache_text(const std::filesystem::path& file, const ClusterKeys& keys, const char* field,
                              std::string_view items);

}  // namespace membrane::kernel
