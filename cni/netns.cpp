#include "netns.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

#include "cni_error.hpp"

namespace membrane::cni {

Netns::Netns(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        const int err = errno;
        if (err == ENOENT)
            throw CniError(ErrorCode::ContainerUnknown, "the network namespace " + path + " does not exist");
        throw CniError(ErrorCode::NetnsUnusable, "cannot open the network namespace " + path + ": " + std::strerror(err));
    }
    // NS_GET_NSTYPE tells an nsfs file of a network namespace from anything else.
    const int type = ::ioctl(fd_, NS_GET_NSTYPE);
    if (type != CLONE_NEWNET) {
        ::close(fd_);
        fd_ = -1;
        throw CniError(ErrorCode::NetnsUnusable, "CNI_NETNS " + path + " is not a network namespace");
    }
}

Netns::~Netns() {
    if (fd_ >= 0) ::close(fd_);
}

bool Netns::exists(const std::string& path) {
    if (path.empty()) return false;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool is_netns = ::ioctl(fd, NS_GET_NSTYPE) == CLONE_NEWNET;
    ::close(fd);
    return is_netns;
}

void Netns::run(const std::function<void()>& work) const {
    std::exception_ptr failure;
    std::thread worker([&] {
        try {
            if (::setns(fd_, CLONE_NEWNET) != 0)
                throw CniError(ErrorCode::NetnsUnusable,
                               "cannot enter the network namespace " + path_ + ": " + std::strerror(errno));
            work();
        } catch (...) {
            failure = std::current_exception();
        }
        // The thread ends here, and its namespace with it.
    });
    worker.join();
    if (failure) std::rethrow_exception(failure);
}

}  // namespace membrane::cni
