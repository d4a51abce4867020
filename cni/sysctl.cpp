#include "sysctl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cni_error.hpp"

namespace membrane::cni {
namespace {

void write_setting(const std::string& path, const std::string& value) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    const ssize_t written = fd < 0 ? -1 : ::write(fd, value.data(), value.size());
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (written != static_cast<ssize_t>(value.size()))
        throw CniError(ErrorCode::InterfaceSetup, "cannot set " + path + " to " + value + ": " + std::strerror(err));
}

}  // namespace

void disable_ipv6(const std::string& ifname) {
    if (::access("/proc/sys/net/ipv6", F_OK) != 0) return;  // booted with ipv6.disable=1, or built without
    write_setting("/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6", "1");
}

}  // namespace membrane::cni
