#include "config/toml_guard.hpp"

#include <cstdio>
#include <string>

#include "membrane/config.hpp"

namespace membrane::kernel {

void refuse_non_ascii_outside_strings(std::string_view text, const std::filesystem::path& source) {
    std::size_t line = 1, line_start = 0;
    char last_token = '\n';  // the last character outside strings and comments that is not a space or tab
    int equals_on_line = 0;   // '=' outside strings: only the first one on a line surely follows a key
    auto refuse = [&](std::size_t at, const char* where) {
        char byte[8];
        std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(text[at])));
        throw ConfigError(source.string() + ":" + std::to_string(line) + ":" + std::to_string(at - line_start + 1) +
                          ": non-ASCII byte " + byte + " " + where +
                          "; only comments and one-line string values (key = \"...\") may hold non-ASCII text");
    };
    auto newline = [&](std::size_t at) {
        ++line;
        line_start = at + 1;
        equals_on_line = 0;
    };

    const std::size_t bom = text.starts_with("\xef\xbb\xbf") ? 3 : 0;  // toml++ skips a UTF-8 byte order mark
    for (std::size_t at = bom; at < text.size(); ++at) {
        const char c = text[at];
        if (c == '\n') {
            newline(at);
            last_token = '\n';
        } else if (c == '#') {
            while (at + 1 < text.size() && text[at + 1] != '\n') ++at;  // comments may hold anything
        } else if (c == '"' || c == '\'') {
            const bool multi_line = text.substr(at, 3) == std::string(3, c);
            // "s =0age=\"é" is one bare value to toml++, which asks whether 'é' is whitespace.
            const bool value = !multi_line && last_token == '=' && equals_on_line == 1;
            const char* where = multi_line ? "in a multi-line string" : "in a quoted key or a string that is not a value";
            at += multi_line ? 3 : 1;
            for (; at < text.size(); ++at) {
                const char s = text[at];
                if (c == '"' && s == '\\') {
                    ++at;  // the escaped character (a line break when it is a line-ending backslash)
                    if (at < text.size() && text[at] == '\n') newline(at);
                    if (at < text.size() && static_cast<unsigned char>(text[at]) > 0x7f) refuse(at, where);
                    continue;
                }
                if (multi_line ? text.substr(at, 3) == std::string(3, c) : s == c) break;
                if (s == '\n') {
                    if (!multi_line) break;  // toml++ refuses the unterminated string here
                    newline(at);
                }
                if (static_cast<unsigned char>(s) > 0x7f && !value) refuse(at, where);
            }
            if (multi_line) at += 2;
            if (at < text.size() && text[at] == '\n') {
                newline(at);
                last_token = '\n';
            } else {
                last_token = c;
            }
        } else if (static_cast<unsigned char>(c) > 0x7f) {
            refuse(at, "outside a string or comment");
        } else if (c != ' ' && c != '\t') {
            last_token = c;
            if (c == '=') ++equals_on_line;
        }
    }
}

}  // namespace membrane::kernel
