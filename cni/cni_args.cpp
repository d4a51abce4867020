#include "cni_args.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "cni_error.hpp"
#include "utf8.hpp"

namespace membrane::cni {
namespace {

std::string lowercase(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// As libcni's UnmarshallableBool: 1/true and 0/false, any case.
bool parse_bool(const std::string& key, const std::string& value) {
    const std::string v = lowercase(value);
    if (v == "1" || v == "true") return true;
    if (v == "0" || v == "false") return false;
    throw CniError(ErrorCode::InvalidEnvironment,
                   "invalid CNI_ARGS: " + key + "='" + value + "' is not a boolean (1, true, 0, false)");
}

}  // namespace

Labels CniArgs::labels() const {
    Labels out;
    if (!pod_namespace.empty()) out[kPodNamespaceLabel] = pod_namespace;
    if (!pod_name.empty()) out[kPodNameLabel] = pod_name;
    return out;
}

CniArgs parse_cni_args(const std::string& text) {
    // Values become pod labels, sent over D-Bus (UTF-8 only).
    if (auto why = invalid_utf8_problem(text); !why.empty())
        throw CniError(ErrorCode::InvalidEnvironment, "invalid CNI_ARGS: not valid UTF-8: " + why);
    std::vector<std::pair<std::string, std::string>> pairs;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(';', start), text.size());
        const std::string pair = text.substr(start, end - start);
        start = end + 1;
        if (pair.empty()) continue;  // tolerate "A=1;" and ";;"
        const std::size_t eq = pair.find('=');
        if (eq == std::string::npos || eq == 0)
            throw CniError(ErrorCode::InvalidEnvironment, "invalid CNI_ARGS: '" + pair + "' is not KEY=VALUE", text);
        pairs.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    }

    CniArgs args;
    // IgnoreUnknown applies to the whole string, wherever it stands.
    for (const auto& [key, value] : pairs)
        if (key == "IgnoreUnknown") args.ignore_unknown = parse_bool(key, value);

    for (const auto& [key, value] : pairs) {
        if (key == "IgnoreUnknown") continue;
        if (key == "K8S_POD_NAMESPACE") {
            args.pod_namespace = value;
        } else if (key == "K8S_POD_NAME") {
            args.pod_name = value;
        } else if (key == "K8S_POD_INFRA_CONTAINER_ID") {
            args.infra_container_id = value;
        } else if (key == "K8S_POD_UID") {
            args.pod_uid = value;
        } else if (!args.ignore_unknown) {
            throw CniError(ErrorCode::InvalidEnvironment,
                           "invalid CNI_ARGS: unknown key '" + key + "' (add IgnoreUnknown=1 to ignore it)", text);
        }
    }
    return args;
}

}  // namespace membrane::cni
