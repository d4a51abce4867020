#include "model/labels.hpp"

#include <algorithm>

#include "config/names.hpp"

namespace membrane::kernel {
namespace {

constexpr std::size_t kMaxLabelText = 253;

bool value_character(char c) { return c > ' ' && c < 0x7f && c != ',' && c != '='; }

}  // namespace

std::optional<std::string> label_problem(const Labels& labels) {
    for (const auto& [key, value] : labels) {
        if (!is_label_key(key)) {
            return "label key '" + key + "' must be 1 to 253 letters, digits and '._/-:'";
        }
        if (key == kReservedLabelKey) {
            return "label key 'reserved' belongs to the reserved identities (host, world, unmanaged, remote-node)";
        }
        if (value.size() > kMaxLabelText || !std::all_of(value.begin(), value.end(), value_character)) {
            return "label '" + key + "' has a value that is not up to 253 printable characters without spaces, ',' "
                   "or '='";
        }
    }
    return std::nullopt;
}

Labels identity_labels(const Labels& labels, const std::vector<std::string>& excluded) {
    auto is_excluded = [&](const std::string& key) {
        const auto colon = key.find(':');
        const std::string_view unsourced =
            colon == std::string::npos ? std::string_view() : std::string_view(key).substr(colon + 1);
        return std::any_of(excluded.begin(), excluded.end(),
                           [&](const std::string& entry) { return entry == key || entry == unsourced; });
    };
    Labels kept;
    for (const auto& [key, value] : labels) {
        if (!is_excluded(key)) kept.emplace_hint(kept.end(), key, value);
    }
    return kept;
}

std::string format_labels(const Labels& labels) {
    std::string out;
    for (const auto& [key, value] : labels) out += (out.empty() ? "" : ",") + key + "=" + value;
    return out;
}

}  // namespace membrane::kernel
