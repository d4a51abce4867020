#include "cni_versions.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace membrane::cni {
namespace {

std::array<int, 3> parse(const std::string& version) {
    std::array<int, 3> parts{0, 0, 0};
    const char* p = version.data();
    const char* end = p + version.size();
    for (int& part : parts) {
        auto [next, ec] = std::from_chars(p, end, part);
        if (ec != std::errc{}) return {0, 0, 0};
        p = next;
        if (p == end) break;
        if (*p != '.') return {0, 0, 0};
        ++p;
    }
    return p == end ? parts : std::array<int, 3>{0, 0, 0};
}

}  // namespace

const std::vector<std::string>& supported_versions() {
    static const std::vector<std::string> versions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
    return versions;
}

bool is_supported_version(const std::string& version) {
    const auto& all = supported_versions();
    return std::find(all.begin(), all.end(), version) != all.end();
}

int compare_versions(const std::string& a, const std::string& b) {
    const auto pa = parse(a), pb = parse(b);
    if (pa < pb) return -1;
    if (pb < pa) return 1;
    return 0;
}

bool version_has_check(const std::string& version) { return compare_versions(version, "0.4.0") >= 0; }

bool version_has_ip_version_field(const std::string& version) { return compare_versions(version, "1.0.0") < 0; }

nlohmann::json version_info_json(const std::string& requested_version) {
    const std::string answer = is_supported_version(requested_version) ? requested_version : kLatestVersion;
    return {{"cniVersion", answer}, {"supportedVersions", supported_versions()}};
}

}  // namespace membrane::cni
