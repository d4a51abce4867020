#include "udp_sweep.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>
#include <utility>

#include <membrane/bpf.hpp>

extern "C" {
#include "bpf/lb_maps.h"
}

namespace membrane::service_lb {
namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

std::string endpoint_text(std::uint32_t address, std::uint16_t port) {
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &address, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(port));
}

// Runs the iterator once in the calling thread's network namespace.
void sweep_here(int link_fd, SweepReport& report, const std::string& where) {
    Fd iterator(bpf_iter_create(link_fd));
    if (iterator.get() < 0) {
        report.errors.push_back(where + ": cannot create the iterator: " + std::strerror(errno));
        return;
    }
    ++report.namespaces;
    service_lb_swept record{};
    std::size_t have = 0;
    for (;;) {
        const ssize_t got = ::read(iterator.get(), reinterpret_cast<char*>(&record) + have, sizeof(record) - have);
        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            report.errors.push_back(where + ": reading the iterator: " + std::strerror(errno));
            return;
        }
        have += static_cast<std::size_t>(got);
        if (have < sizeof(record)) continue;
        report.sockets.push_back({endpoint_text(record.service_address, record.service_port),
                                  endpoint_text(record.backend_address, record.backend_port), record.result});
        have = 0;
    }
}

}  // namespace

UdpSweep::UdpSweep(int program_fd) : link_fd_(bpf_link_create(program_fd, 0, BPF_TRACE_ITER, nullptr)) {
    if (link_fd_ < 0) {
        throw BpfError(std::string("cannot link the UDP socket iterator: ") + std::strerror(errno));
    }
}

UdpSweep::~UdpSweep() { ::close(link_fd_); }

SweepReport UdpSweep::sweep(const std::vector<std::string>& netns_paths) const {
    SweepReport report;
    // setns() moves only the calling thread: a thread of its own, which ends
    // where it ends, so the agent's threads never change namespace.
    std::thread worker([&] {
        std::set<std::pair<dev_t, ino_t>> seen;
        struct stat own{};
        if (::stat("/proc/thread-self/ns/net", &own) == 0) seen.insert({own.st_dev, own.st_ino});
        sweep_here(link_fd_, report, "the agent's network namespace");
        for (const auto& path : netns_paths) {
            Fd netns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            struct stat st{};
            if (netns.get() < 0 || ::fstat(netns.get(), &st) != 0) {
                report.errors.push_back(path + ": " + std::strerror(errno));
                continue;
            }
            if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
            if (::setns(netns.get(), CLONE_NEWNET) != 0) {
                report.errors.push_back(path + ": cannot enter it: " + std::strerror(errno));
                continue;
            }
            sweep_here(link_fd_, report, path);
        }
    });
    worker.join();
    return report;
}

}  // namespace membrane::service_lb
