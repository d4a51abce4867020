#include "cluster/cluster_keys.hpp"

#include <charconv>

#include "model/labels.hpp"

namespace membrane::kernel {

std::optional<std::uint32_t> parse_number(std::string_view text) {
    std::uint32_t value = 0;
    if (text.empty() || text.size() > 10 || (text.size() > 1 && text.front() == '0')) return std::nullopt;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::string ClusterKeys::identity_by_labels(const Labels& labels) const {
    return identities() + "labels/" + format_labels(labels);
}

std::optional<std::string> ClusterKeys::endpoint_of(std::string_view key) const {
    const std::string prefix = endpoints();
    if (!key.starts_with(prefix) || key.size() == prefix.size()) return std::nullopt;
    return std::string(key.substr(prefix.size()));
}

std::optional<std::uint32_t> ClusterKeys::identity_of(std::string_view key) const {
    const std::string prefix = identity_ids();
    if (!key.starts_with(prefix)) return std::nullopt;
    return parse_number(key.substr(prefix.size()));
}

std::optional<std::pair<std::uint32_t, std::string>> ClusterKeys::identity_ref_of(std::string_view key) const {
    const std::string prefix = identity_refs();
    if (!key.starts_with(prefix)) return std::nullopt;
    key.remove_prefix(prefix.size());
    const auto slash = key.find('/');
    if (slash == std::string_view::npos || slash + 1 == key.size()) return std::nullopt;
    const auto id = parse_number(key.substr(0, slash));
    if (!id) return std::nullopt;
    return std::pair{*id, std::string(key.substr(slash + 1))};
}

}  // namespace membrane::kernel
