#include "model/labels.hpp"

#include <algorithm>

namespace membrane::kernel {
namespace {

constexpr std::size_t kMaxLabelText = 253;

bool key_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '/' || c == '-' || c == ':';  // ':' separates a source: k8s:app
}

bool value_character(char c) { return c > ' ' && c < 0x7f && c != ',' && c != '='; }

}  // namespace

std::optional<std::string> label_problem(const Labels& labels) {
    for (const auto& [key, value] : labels) {
        if (key.empty() || key.size() > kMaxLabelText || !std::all_of(key.begin(), key.end(), key_character)) {
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

std::string format_labels(const Labels& labels) {
    std::string out;
    for (const auto& [key, value] : labels) out += (out.empty() ? "" : ",") + key + "=" + value;
    return out;
}

}  // namespace membrane::kernel
