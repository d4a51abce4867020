// The applied objects on disk (ClusterObjects' cache file): a snapshot and a
// journal of the changes made since, so that an apply costs the size of its
// own objects, not of all of them.
//
//   <file>          the snapshot, a cluster cache ({"format": 1, "root": ...,
//                   "objects": [{"key", "document"}, ...]}), replaced whole
//                   through write_state_file (atomic, durable);
//   <file>.journal  one change a line, {"root": ..., "put": [{"key",
//                   "document"}, ...], "erase": [key, ...]}, appended through
//                   append_state_record: on disk when append() returns.
//
// What is on disk is the snapshot with every journal line applied in order.
// rewrite() writes the whole state as the snapshot, then removes the journal:
// a crash between the two leaves a journal whose lines the snapshot already
// holds, and applying them again changes nothing (a line says what a key
// holds, not how to change it). A crash in the middle of an append leaves a
// last line cut short: its change was never answered, so read() drops it and
// says so (torn_tail); the owner then rewrites, so that the next append does
// not land behind the cut line. Any other line that is not JSON, or not a
// change of this cluster, is a corrupt record (StateError).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/cluster_keys.hpp"

namespace membrane::kernel {

class ObjectsFile {
public:
    // `field`: the snapshot's list ("objects").
    ObjectsFile(std::filesystem::path file, ClusterKeys keys, std::string field);

    struct Contents {
        std::map<std::string, nlohmann::json> documents;  // by key
        bool found = false;      // a snapshot or a journal exists
        bool torn_tail = false;  // the journal's last line was cut short (dropped)
        // Entries that are not {"key", "document"}: left out, for the owner
        // to refuse or skip (a cache is not the truth; a local file is).
        std::vector<std::string> malformed;
    };
    // Throws StateError (corrupt_record) naming the file. Records the sizes
    // that needs_rewrite() weighs.
    Contents read();

    // One change, durable when it returns; throws StateError (and then
    // nothing of it is on disk, unless the crash-or-failure left a cut line,
    // which read() drops). `documents`: key -> what it now holds.
    void append(const std::vector<std::pair<std::string, const nlohmann::json*>>& documents,
                const std::vector<std::string>& erased);
    // The whole state as the new snapshot, the journal emptied; throws
    // StateError. `documents`: key and what it holds, as JSON text (one value each).
    void rewrite(const std::vector<std::pair<std::string_view, std::string_view>>& documents);

    // The journal has grown past the snapshot (and past a floor): rewriting
    // now keeps the total written linear in the number of changes.
    bool needs_rewrite() const;
    std::size_t journal_bytes() const { return journal_bytes_; }
    const std::filesystem::path& journal_path() const { return journal_; }

private:
    std::filesystem::path file_;
    std::filesystem::path journal_;
    ClusterKeys keys_;
    std::string field_;
    std::size_t snapshot_bytes_ = 0;
    std::size_t journal_bytes_ = 0;
};

}  // namespace membrane::kernel
