#include "cluster/objects_file.hpp"

#include <algorithm>

#include "cluster/cluster_cache.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

// Below this the journal is left to grow: rewriting a small snapshot often
// gains nothing.
constexpr std::size_t kJournalFloor = 256 * 1024;

nlohmann::json item(const std::string& key, const nlohmann::json& document) {
    return {{"key", key}, {"document", document}};
}

bool is_item(const nlohmann::json& entry) {
    return entry.is_object() && entry.contains("key") && entry["key"].is_string() && entry.contains("document");
}

}  // namespace

ObjectsFile::ObjectsFile(std::filesystem::path file, ClusterKeys keys, std::string field)
    : file_(std::move(file)), journal_(file_.string() + ".journal"), keys_(std::move(keys)), field_(std::move(field)) {}

ObjectsFile::Contents ObjectsFile::read() {
    Contents out;
    if (const auto items = read_cluster_cache(file_, keys_, field_.c_str())) {
        out.found = true;
        for (const auto& entry : *items) {
            if (!is_item(entry)) {
                out.malformed.push_back("not an object record: " + entry.dump());
                continue;
            }
            out.documents.insert_or_assign(entry["key"].get<std::string>(), entry["document"]);
        }
        std::error_code ec;
        snapshot_bytes_ = static_cast<std::size_t>(std::filesystem::file_size(file_, ec));
    }
    auto journal = read_state_records(journal_);
    journal_bytes_ = journal.bytes;
    out.torn_tail = journal.torn_tail;
    out.found = out.found || journal.bytes > 0;
    std::size_t line = 0;
    for (auto& record : journal.records) {
        ++line;
        const auto where = "line " + std::to_string(line) + ": ";
        if (!record.is_object() || record.value("root", std::string()) != keys_.root()) {
            throw corrupt_record(journal_, where + "not a change of " + keys_.root() +
                                    " ([cluster] changed: remove the file and its snapshot, and apply again)");
        }
        const auto puts = record.find("put");
        const auto erases = record.find("erase");
        if ((puts != record.end() && !puts->is_array()) || (erases != record.end() && !erases->is_array())) {
            throw corrupt_record(journal_, where + "'put' and 'erase' are lists");
        }
        if (puts != record.end()) {
            for (auto& entry : *puts) {
                if (!is_item(entry)) {
                    out.malformed.push_back(journal_.string() + ": " + where + "not an object record: " + entry.dump());
                    continue;
                }
                out.documents.insert_or_assign(entry["key"].get<std::string>(), std::move(entry["document"]));
            }
        }
        if (erases != record.end()) {
            for (const auto& key : *erases) {
                if (!key.is_string()) throw corrupt_record(journal_, where + "an erased key is not a string: " + key.dump());
                out.documents.erase(key.get<std::string>());
            }
        }
    }
    return out;
}

void ObjectsFile::append(const std::vector<std::pair<std::string, const nlohmann::json*>>& documents,
                         const std::vector<std::string>& erased) {
    nlohmann::json record{{"root", keys_.root()}};
    if (!documents.empty()) {
        auto& puts = record["put"] = nlohmann::json::array();
        for (const auto& [key, document] : documents) puts.push_back(item(key, *document));
    }
    if (!erased.empty()) record["erase"] = erased;
    journal_bytes_ += append_state_record(journal_, record);
}

void ObjectsFile::rewrite(const std::vector<std::pair<std::string_view, std::string_view>>& documents) {
    // Item by item into one text: no copy of every document as JSON values.
    std::string items;
    for (const auto& [key, document] : documents) {
        if (!items.empty()) items += ",\n";
        items += "{\"key\":" + nlohmann::json(key).dump() + ",\"document\":";
        items += document;
        items += "}";
    }
    write_cluster_cache_text(file_, keys_, field_.c_str(), items);
    // The snapshot holds every change of the journal now: a crash before the
    // journal goes replays changes that are already there.
    remove_state_file(journal_);
    journal_bytes_ = 0;
    std::error_code ec;
    snapshot_bytes_ = static_cast<std::size_t>(std::filesystem::file_size(file_, ec));
}

bool ObjectsFile::needs_rewrite() const { return journal_bytes_ > std::max(kJournalFloor, snapshot_bytes_); }

}  // namespace membrane::kernel
