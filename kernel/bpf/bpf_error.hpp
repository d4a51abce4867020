// Turning libbpf's negative errno returns into readable BpfErrors.
#pragma once

#include <string>

#include "membrane/bpf.hpp"

namespace membrane::kernel {

// "<what>: <strerror(err)>"; err may be negative (libbpf style) or positive.
std::string with_errno(const std::string& what, int err);

[[noreturn]] void throw_bpf_error(const std::string& what, int err);

}  // namespace membrane::kernel
