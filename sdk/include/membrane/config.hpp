// Reading a TOML table strictly: every value is type-checked, every key the
// reader did not ask for is refused, and every error names file:line:column.
// The kernel reads its own tables with it; modules should read theirs with it.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "membrane/api.hpp"

namespace membrane {

class MEMBRANE_SDK_API ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// "file:line:column" of a node, or "<where>" when the node has no source.
inline std::string source_position(const toml::source_region& src, std::string_view fallback = "<config>") {
    std::string out = src.path ? *src.path : std::string(fallback);
    if (src.begin.line != 0) {
        out += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
    }
    return out;
}

class ConfigReader {
public:
    // `where` names the table in messages, e.g. "agent" or "module.counter".
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
            throw ConfigError(source_position(table_.source()) + ": [" + where_ + "] is missing the required key '" +
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
                throw ConfigError(source_position(key.source()) + ": unknown key '" + std::string(key.str()) +
                                  "' in [" + where_ + "]");
            }
        }
    }

    const std::string& where() const { return where_; }

private:
    ConfigError type_error(const toml::node& node, std::string_view key, std::string_view expected) const {
        return ConfigError(source_position(node.source()) + ": '" + std::string(key) + "' in [" + where_ +
                           "] must be " + std::string(expected));
    }

    template <class T>
    T convert(const toml::node& node, std::string_view key) const {
        if constexpr (std::is_same_v<T, bool>) {
            if (auto v = node.value_exact<bool>()) return *v;
            throw type_error(node, key, "a boolean");
        } else if constexpr (std::is_integral_v<T>) {
            auto v = node.value_exact<std::int64_t>();
            if (!v) throw type_error(node, key, "an integer");
            if (!std::in_range<T>(*v)) throw type_error(node, key, "an integer that fits its type");
            return static_cast<T>(*v);
        } else if constexpr (std::is_floating_point_v<T>) {
            if (auto v = node.value<double>()) return static_cast<T>(*v);
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
