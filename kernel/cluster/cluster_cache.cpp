#include "cluster/cluster_cache.hpp"

#include "state/state_file.hpp"

namespace membrane::kernel {
namespace {

constexpr int kCacheFormat = 1;

}  // namespace

std::optional<nlohmann::json> read_cluster_cache(const std::filesystem::path& file, const ClusterKeys& keys,
                                                 const char* field) {
    const auto document = read_state_file(file);
    if (!document) return std::nullopt;
    try {
        expect_state_format(file, *document, kCacheFormat);
        const auto root = document->at("root").get<std::string>();
        if (root != keys.root()) {
            throw corrupt_record(file, "it holds the state of " + root + ", not of " + keys.root() +
                                           " ([cluster] changed: remove the file and recreate the pods)");
        }
        auto items = document->at(field);
        if (!items.is_array()) throw corrupt_record(file, std::string("'") + field + "' is not a list");
        return items;
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(file, std::string("not a cache the agent wrote (") + e.what() + ")");
    }
}

void write_cluster_cache(const std::filesystem::path& file, const ClusterKeys& keys, const char* field,
                         nlohmann::json items) {
    write_state_file(file, {{"format", kCacheFormat}, {"root", keys.root()}, {field, std::move(items)}});
}

void write_cluster_cache_text(const std::filesystem::path& file, const ClusterKeys& keys, const char* field,
                              std::string_view items) {
    std::string text = "{\"format\":" + std::to_string(kCacheFormat) + ",\"root\":" + nlohmann::json(keys.root()).dump() +
                       "," + nlohmann::json(field).dump() + ":[";
    text.reserve(text.size() + items.size() + 3);
    text.append(items);
    text += "]}\n";
    write_state_text(file, text);
}

}  // namespace membrane::kernel
