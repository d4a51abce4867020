#include "bpf/bpf_error.hpp"

#include <cstdlib>
#include <cstring>

namespace membrane::kernel {

std::string with_errno(const std::string& what, int err) {
    const int code = std::abs(err);
    return what + ": " + std::strerror(code) + " (errno " + std::to_string(code) + ")";
}

void throw_bpf_error(const std::string& what, int err) { throw BpfError(with_errno(what, err)); }

}  // namespace membrane::kernel
