// Test scaffolding for the registry tests: a private bpffs and state folder
// per test, a capturing logger, readers for pinned maps, and two network
// namespaces joined by a veth. Everything is unique per process and test and
// is removed in destructors, so tests run in parallel and clean up on failure.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "bpf/bpffs.hpp"
#include "bpf/unique_fd.hpp"

namespace membrane::kernel::test {

inline int next_sandbox_number() {
    static std::atomic<int> counter{0};
    return counter++;
}

// /run/membrane-test-<pid>-<n>/{bpffs,state}; the bpffs is mounted unless
// `mount` is false (to let the Registry mount it).
class BpffsSandbox {
public:
    explicit BpffsSandbox(bool mount = true)
        : root_(std::filesystem::path("/run") /
                ("membrane-test-" + std::to_string(::getpid()) + "-" + std::to_string(next_sandbox_number()))) {
        std::filesystem::create_directories(bpffs());
        std::filesystem::create_directories(state_dir());
        if (mount && ::mount("bpf", bpffs().c_str(), "bpf", 0, "mode=0700") != 0) {
            throw std::runtime_error("cannot mount bpffs on " + bpffs().string());
        }
    }
    ~BpffsSandbox() {
        // Unmount first, so that removing the folders never walks a live bpffs.
        for (int i = 0; i < 4 && is_bpffs(bpffs()); ++i) ::umount2(bpffs().c_str(), MNT_DETACH);
        if (!is_bpffs(bpffs())) {
            std::error_code ignored;
            std::filesystem::remove_all(root_, ignored);
        }
    }
    BpffsSandbox(const BpffsSandbox&) = delete;
    BpffsSandbox& operator=(const BpffsSandbox&) = delete;

    std::filesystem::path root() const { return root_; }
    std::filesystem::path bpffs() const { return root_ / "bpffs"; }
    std::filesystem::path pin_dir() const { return bpffs() / "membrane" / "node-a"; }
    std::filesystem::path state_dir() const { return root_ / "state"; }

private:
    std::filesystem::path root_;
};

// A logger whose lines the test can read back.
struct CapturedLog {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(512);
    std::shared_ptr<spdlog::logger> logger = [this] {
        auto log = std::make_shared<spdlog::logger>("bpf-test", sink);
        log->set_level(spdlog::level::debug);
        sink->set_pattern("%l %v");
        return log;
    }();

    std::string text() const {
        std::string all;
        for (const auto& line : sink->last_formatted()) all += line;
        return all;
    }
};

inline std::uint32_t map_id(int fd) {
    bpf_map_info info{};
    std::uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) throw std::runtime_error("bpf_obj_get_info_by_fd failed");
    return info.id;
}

inline std::uint32_t pinned_map_id(const std::filesystem::path& pin) {
    const UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) throw std::runtime_error("no pin at " + pin.string());
    return map_id(fd.get());
}

inline std::uint32_t program_id_of(int program_fd) {
    bpf_prog_info info{};
    std::uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(program_fd, &info, &length) != 0) throw std::runtime_error("prog info failed");
    return info.id;
}

// The program id in a slot of the pinned prog array, 0 if empty.
inline std::uint32_t slot_id(const std::filesystem::path& pipeline_pin, std::uint32_t stage) {
    const UniqueFd fd(bpf_obj_get(pipeline_pin.c_str()));
    if (!fd) throw std::runtime_error("no pin at " + pipeline_pin.string());
    std::uint32_t id = 0;
    return bpf_map_lookup_elem(fd.get(), &stage, &id) == 0 ? id : 0;
}

inline std::uint64_t read_u64(const std::filesystem::path& pin, std::uint32_t key) {
    const UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) throw std::runtime_error("no pin at " + pin.string());
    std::uint64_t value = 0;
    if (bpf_map_lookup_elem(fd.get(), &key, &value) != 0) throw std::runtime_error("lookup failed");
    return value;
}

inline std::uint64_t sum_percpu_u64(const std::filesystem::path& pin, std::uint32_t key) {
    const UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) throw std::runtime_error("no pin at " + pin.string());
    std::vector<std::uint64_t> values(static_cast<std::size_t>(libbpf_num_possible_cpus()));
    if (bpf_map_lookup_elem(fd.get(), &key, values.data()) != 0) throw std::runtime_error("lookup failed");
    std::uint64_t sum = 0;
    for (const auto value : values) sum += value;
    return sum;
}

// Runs a shell command; returns its exit status and (if wanted) its output.
inline int run(const std::string& command, std::string* output = nullptr) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return -1;
    std::string text;
    char buffer[512];
    while (std::fgets(buffer, sizeof(buffer), pipe)) text += buffer;
    const int status = ::pclose(pipe);
    if (output) *output = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Namespaces <prefix>-a and <prefix>-b joined by veth0 (in a, 10.211.<n>.1/24)
// and veth1 (in b, .2). Links are created inside the namespaces: the host's
// interfaces and routes are never touched.
class NetnsPair {
public:
    NetnsPair() {
        const int number = next_sandbox_number() % 250;
        const std::string prefix = "mbrt-" + std::to_string(::getpid()) + "-" + std::to_string(number);
        a_ = prefix + "-a";
        b_ = prefix + "-b";
        subnet_ = "10.211." + std::to_string(number) + ".";
        must("ip netns add " + a_);
        must("ip netns add " + b_);
        must("ip -n " + a_ + " link add veth0 type veth peer name veth1 netns " + b_);
        must("ip -n " + a_ + " addr add " + address_a() + "/24 dev veth0");
        must("ip -n " + b_ + " addr add " + address_b() + "/24 dev veth1");
        for (const auto& [ns, link] : {std::pair{a_, "veth0"}, std::pair{b_, "veth1"}}) {
            must("ip -n " + ns + " link set lo up");
            must("ip -n " + ns + " link set " + link + " up");
        }
    }
    ~NetnsPair() { remove(); }
    NetnsPair(const NetnsPair&) = delete;
    NetnsPair& operator=(const NetnsPair&) = delete;

    const std::string& a() const { return a_; }
    const std::string& b() const { return b_; }
    std::string address_a() const { return subnet_ + "1"; }
    std::string address_b() const { return subnet_ + "2"; }

    // Pings a's address from b; true if every reply came back.
    bool ping_a_from_b(int count, std::string* output = nullptr) const {
        std::string text;
        const int status = run("ip netns exec " + b_ + " ping -n -q -c " + std::to_string(count) +
                                   " -i 0.2 -W 1 " + address_a(),
                               &text);
        if (output) *output = text;
        return status == 0 && text.find(" 0% packet loss") != std::string::npos;
    }

private:
    void remove() {
        run("ip netns del " + a_);
        run("ip netns del " + b_);
    }
    void must(const std::string& command) {
        std::string output;
        if (run(command, &output) != 0) {
            remove();  // a partial set-up is cleaned up too
            throw std::runtime_error(command + ": " + output);
        }
    }
    std::string a_, b_, subnet_;
};

// Moves the calling thread into a network namespace until destroyed.
class EnterNetns {
public:
    explicit EnterNetns(const std::string& name)
        : original_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
        const UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
        if (!original_ || !target || ::setns(target.get(), CLONE_NEWNET) != 0) {
            throw std::runtime_error("cannot enter network namespace " + name);
        }
    }
    ~EnterNetns() {
        if (::setns(original_.get(), CLONE_NEWNET) != 0) std::abort();  // never run on in the wrong netns
    }
    EnterNetns(const EnterNetns&) = delete;
    EnterNetns& operator=(const EnterNetns&) = delete;

private:
    UniqueFd original_;
};

}  // namespace membrane::kernel::test
