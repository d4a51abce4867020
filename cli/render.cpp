#include "render.hpp"

#include <algorithm>
#include <cstdint>

namespace membrane::cli {
namespace {

std::string text_of(const nlohmann::json& value) {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_array()) {
        std::string joined;
        for (const auto& item : value) joined += (joined.empty() ? "" : ",") + text_of(item);
        return joined.empty() ? "-" : joined;
    }
    if (value.is_null()) return "-";
    return value.dump();
}

std::string duration_of(std::uint64_t seconds) {
    const auto days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60;
    std::string out;
    if (days) out += std::to_string(days) + "d";
    if (days || hours) out += std::to_string(hours) + "h";
    if (days || hours || minutes) out += std::to_string(minutes) + "m";
    return out + std::to_string(secs) + "s";
}

}  // namespace

void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths(headers.size(), 0);
    auto widen = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    };
    if (!headers.empty() && !headers[0].empty()) widen(headers);
    for (const auto& row : rows) widen(row);
    auto print_row = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size(); ++i) {
            out << row[i];
            if (i + 1 < row.size()) out << std::string(widths[i] - row[i].size() + 2, ' ');
        }
        out << '\n';
    };
    if (!headers.empty() && !headers[0].empty()) print_row(headers);
    for (const auto& row : rows) print_row(row);
}

void print_status(std::ostream& out, const nlohmann::json& status, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << status.dump() << '\n';
        return;
    }
    auto field = [&](const char* key) { return status.contains(key) ? text_of(status[key]) : std::string("-"); };
    std::vector<std::vector<std::string>> rows{
        {"Node:", field("node")},
        {"Version:", field("version")},
        {"State:", field("state")},
        {"Uptime:", status.contains("uptime_seconds") && status["uptime_seconds"].is_number()
                        ? duration_of(status["uptime_seconds"].get<std::uint64_t>())
                        : "-"},
        {"Pin dir:", field("pin_dir")},
        {"Config:", field("config_path")},
        {"Devices:", field("devices")},
        {"Modules:", field("modules_running") + " running, " + field("modules_failed") + " failed"},
    };
    print_table(out, {""}, rows);
}

void print_modules(std::ostream& out, const nlohmann::json& modules, OutputFormat format) {
    if (format == OutputFormat::Json) {
        out << modules.dump() << '\n';
        return;
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : modules) {
        rows.push_back({text_of(m["name"]), text_of(m["state"]), text_of(m["generation"]), text_of(m["sdk"]),
                        text_of(m["stages"]), text_of(m["path"]), m["message"].get<std::string>()});
    }
    print_table(out, {"NAME", "STATE", "GEN", "SDK", "STAGES", "PATH", "MESSAGE"}, rows);
}

}  // namespace membrane::cli
