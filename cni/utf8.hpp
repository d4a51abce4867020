// UTF-8 checks for what membrane-cni reads from the runtime. The CNI_*
// variables and stdin are bytes; nlohmann-json refuses to print, and sd-bus
// to send, a string that is not UTF-8, so such input is refused up front
// with a message naming the field rather than failing (or aborting) later.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace membrane::cni {

// The offset of the first byte that does not start a valid UTF-8 sequence
// (overlong forms, surrogates and code points above U+10FFFF included), or
// nullopt when all of `text` is UTF-8.
std::optional<std::size_t> first_invalid_utf8(std::string_view text);

// "byte 0xcb at offset 3" for the first invalid byte; "" when `text` is UTF-8.
std::string invalid_utf8_problem(std::string_view text);

// `text` with every byte that is not part of a valid sequence replaced by
// U+FFFD, so that it can be parsed or printed.
std::string replace_invalid_utf8(std::string_view text);

// One character for a message: 'c' when printable ASCII, else "byte 0xNN"
// (one byte of a multi-byte character is not printable on its own).
std::string describe_char(char c);

}  // namespace membrane::cni
