// A fence in front of toml++ 3.3 (Debian 12): its Unicode whitespace test
// reaches __builtin_unreachable() for many non-ASCII characters (U+00A1 to
// U+0499 among them) wherever the parser asks "is this whitespace?": between
// tokens, after a value, inside a quoted key, after a line-ending backslash
// in a multi-line string (marzer/tomlplusplus#190 and #295, fixed upstream
// after 3.3). That is undefined behaviour on a one-byte typo, found by
// test/fuzz/agent_config. membrane.toml needs non-ASCII only in comments and
// in string values, so that is all this lets through.
#pragma once

#include <filesystem>
#include <string_view>

namespace membrane::kernel {

// Throws ConfigError "file:line:column: ..." at the first byte above 0x7f
// that is neither in a comment nor inside a one-line string value written
// right after the first '=' of its line (key = "café", key = 'café'; not in
// arrays or inline tables).
void refuse_non_ascii_outside_strings(std::string_view text, const std::filesystem::path& source);

}  // namespace membrane::kernel
