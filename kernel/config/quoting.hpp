// How config messages quote the values they name: 'value'.
#pragma once

#include <string>
#include <string_view>

namespace membrane::kernel {

inline std::string single_quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace membrane::kernel
