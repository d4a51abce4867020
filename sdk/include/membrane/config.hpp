// Reading a TOML table strictly: every value is type-checked, every key the
// reader did not ask for is refused, and every error names file:line:column.
// The kernel reads its own tables with it; modules should read theirs with it.
//
//   membrane::ConfigReader read(ctx.config(), "module.counter");
//   auto interval = read.get<std::int64_t>("interval_ms", 1000);
//   auto devices  = read.strings("devices");
//   read.finish();  // refuses keys nobody asked for
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "membrane/api.hpp"

namespace membrane {

class MEMBRANE_SDK_API ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "file:line:column" of a node, or `fallback` when the region has no file.
inline std::string source_position(const toml::source_region& src, std::string_view fallback = "<config>") {
    std::string out = src.path ? *src.path : std::string(fallback);
    if (src.begin.line != 0) {
        out += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
    }
    return out;
}

// The type of a node in words, for "must be X, not Y" messages.
inline std::string_view toml_type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a float";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

class ConfigReader {
public:
    // `where` names the table in messages, e.g. "agent" or "module.counter";
    // an empty `where` is the document's top level.
    ConfigReader(const toml::table& table, std::string where) : table_(table), where_(std::move(where)) {}

    ConfigReader(const ConfigReader&) = delete;
    ConfigReader& operator=(const ConfigReader&) = delete;

    template <class T>
    std::optional<T> optional(std::string_view key) {
        seen_.insert(std::string(key));
        const toml::node* node = table_.get(key);
        if (node == nullptr) return std::nullopt;
        return convert<T>(*node, key);
    }

    template <class T>
    T get(std::string_view key, T fallback) {
        auto v = optional<T>(key);
        return v ? std::move(*v) : std::move(fallback);
    }

    template <class T>
    T required(std::string_view key) {
        auto v = optional<T>(key);
        if (!v) {
            throw ConfigError(source_position(table_.source()) + ": " + table_name() + " is missing the required key '" +
                              std::string(key) + "'");
        }
        return std::move(*v);
    }

    std::vector<std::string> strings(std::string_view key, std::vector<std::string> fallback = {}) {
        seen_.insert(std::string(key));
        const toml::node* node = table_.get(key);
        if (node == nullptr) return fallback;
        const toml::array* arr = node->as_array();
        if (arr == nullptr) throw type_error(*node, key, "an array of strings");
        std::vector<std::string> out;
        for (const toml::node& item : *arr) {
            const auto* s = item.as_string();
            if (s == nullptr) throw type_error(item, key, "an array of strings");
            out.push_back(s->get());
        }
        return out;
    }

    // A sub-table; an absent key gives an empty table.
    const toml::table& table(std::string_view key) {
        seen_.insert(std::string(key));
        const toml::node* node = table_.get(key);
        if (node == nullptr) return empty_;
        const toml::table* t = node->as_table();
        if (t == nullptr) throw type_error(*node, key, "a table");
        return *t;
    }

    // Refuses the first key nobody asked for. Call after reading everything.
    void finish() const {
        for (const auto& [key, node] : table_) {
            if (seen_.count(std::string(key.str())) == 0) {
                throw ConfigError(source_position(key.source()) + ": unknown key '" + std::string(key.str()) + "' " +
                                  in_where());
            }
        }
    }

    const std::string& where() const { return where_; }

    // Where a value of this table stands, "file:line:column". toml++ drops
    // the source of values when a table is copied but keeps the keys', so
    // this falls back to the key's position, then to the table's.
    std::string position_of(const toml::node& node, std::string_view key) const {
        if (node.source().begin.line != 0) return source_position(node.source());
        if (auto it = table_.find(key); it != table_.end() && it->first.source().begin.line != 0) {
            return source_position(it->first.source());
        }
        return source_position(table_.source(), where_.empty() ? "<config>" : "[" + where_ + "]");
    }

    // "'key' in [where]: problem", positioned: for checks beyond the type
    // (ranges, enums, formats) that the caller makes on a value it read.
    ConfigError error(std::string_view key, std::string_view problem) const {
        const toml::node* node = table_.get(key);
        const std::string at = node ? position_of(*node, key) : source_position(table_.source());
        return ConfigError(at + ": '" + std::string(key) + "' " + in_where() + " " + std::string(problem));
    }

    // Same, for one item of an array value (its own position).
    ConfigError error_at(const toml::node& item, std::string_view key, std::string_view problem) const {
        return ConfigError(position_of(item, key) + ": '" + std::string(key) + "' " + in_where() + " " +
                           std::string(problem));
    }

private:
    std::string table_name() const { return where_.empty() ? "the top level" : "[" + where_ + "]"; }
    std::string in_where() const { return where_.empty() ? "at the top level" : "in " + table_name(); }

    ConfigError type_error(const toml::node& node, std::string_view key, std::string_view expected) const {
        return error_at(node, key, "must be " + std::string(expected) + ", not " + std::string(toml_type_name(node)));
    }

    template <class T>
    T convert(const toml::node& node, std::string_view key) const {
        if constexpr (std::is_same_v<T, bool>) {
            if (auto v = node.value_exact<bool>()) return *v;
            throw type_error(node, key, "a boolean");
        } else if constexpr (std::is_integral_v<T>) {
            auto v = node.value_exact<std::int64_t>();
            if (!v) throw type_error(node, key, "an integer");
            if (!std::in_range<T>(*v)) {
                throw error_at(node, key, "is out of range (" + std::to_string(*v) + ")");
            }
            return static_cast<T>(*v);
        } else if constexpr (std::is_floating_point_v<T>) {
            // Integers are accepted where a number is wanted ("timeout = 2").
            if (node.is_integer() || node.is_floating_point()) return static_cast<T>(*node.value<double>());
            throw type_error(node, key, "a number");
        } else {
            static_assert(std::is_same_v<T, std::string>, "ConfigReader reads bool, integers, floats and strings");
            if (auto v = node.value_exact<std::string>()) return *v;
            throw type_error(node, key, "a string");
        }
    }

    const toml::table& table_;
    std::string where_;
    std::set<std::string> seen_;
    inline static const toml::table empty_{};
};

}  // namespace membrane
