// A node and its pods, wired as membrane-cni wires them (DESIGN/preamble):
// a "node" network namespace and one namespace per pod, each pod joined to
// the node by a veth pair created inside the namespaces. The pod has its
// address as a /32, a link route to the gateway (the first address of the
// pod CIDR, configured nowhere) and a default route via it; the node has a
// /32 route to each pod over its host veth, which has no address. The test
// plays the model: it writes the endpoints map and the ipcache and attaches
// the entry programs. Names are unique per process and lab; the destructor
// removes every namespace (and with them the links), also on failure.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "sandbox.hpp"

extern char** environ;

namespace membrane::kernel::test {

struct Pod {
    std::string netns;     // the pod's network namespace
    std::string ip;        // its address (a /32)
    std::string host_veth; // host side of its veth, in the node namespace
    std::array<std::uint8_t, 6> mac;       // pod side (eth0)
    std::array<std::uint8_t, 6> host_mac;  // host side: the pod's gateway
};

inline std::string mac_text(const std::array<std::uint8_t, 6>& mac) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

inline std::uint32_t ipv4_be(const std::string& text) {
    in_addr address{};
    if (::inet_pton(AF_INET, text.c_str(), &address) != 1) throw std::runtime_error("not an IPv4 address: " + text);
    return address.s_addr;
}

class PodLab {
public:
    // Pod CIDR 10.212.<n>.0/24, gateway .1; the node's own address
    // 192.168.<n>.1/32 on its lo (an address that is no endpoint).
    PodLab() : number_(next_sandbox_number() % 250) {
        prefix_ = "mbrp-" + std::to_string(::getpid()) + "-" + std::to_string(number_);
        node_ = prefix_ + "-node";
        must("ip netns add " + node_);
        created_.push_back(node_);
        must("ip -n " + node_ + " link set lo up");
        must("ip -n " + node_ + " addr add " + node_address() + "/32 dev lo");
        // No forwarding on the node: whatever reaches a pod got there by redirect.
        must("ip netns exec " + node_ + " sysctl -qw net.ipv4.ip_forward=0");
    }
    ~PodLab() { remove(); }
    PodLab(const PodLab&) = delete;
    PodLab& operator=(const PodLab&) = delete;

    const std::string& node() const { return node_; }
    std::string subnet() const { return "10.212." + std::to_string(number_) + "."; }
    std::string gateway() const { return subnet() + "1"; }
    std::string node_address() const { return "192.168." + std::to_string(number_) + ".1"; }

    // Pod number `index` (1..) gets address <subnet>.(index + 4) and host veth hv<index>.
    Pod add_pod(int index) {
        Pod pod;
        pod.netns = prefix_ + "-p" + std::to_string(index);
        pod.ip = subnet() + std::to_string(index + 4);
        pod.host_veth = "hv" + std::to_string(index);
        pod.mac = {0x02, 0x00, 0x0a, static_cast<std::uint8_t>(number_), 0x00, static_cast<std::uint8_t>(index)};
        pod.host_mac = {0x02, 0x00, 0x0a, static_cast<std::uint8_t>(number_), 0x01, static_cast<std::uint8_t>(index)};

        must("ip netns add " + pod.netns);
        created_.push_back(pod.netns);
        must(fmt::format("ip -n {} link add eth0 address {} type veth peer name {} address {} netns {}", pod.netns,
                         mac_text(pod.mac), pod.host_veth, mac_text(pod.host_mac), node_));
        must("ip -n " + pod.netns + " link set lo up");
        must("ip -n " + pod.netns + " link set eth0 up");
        must("ip -n " + pod.netns + " addr add " + pod.ip + "/32 dev eth0");
        must("ip -n " + pod.netns + " route add " + gateway() + " dev eth0 scope link");
        must("ip -n " + pod.netns + " route add default via " + gateway() + " dev eth0");
        must("ip -n " + node_ + " link set " + pod.host_veth + " up");
        must("ip -n " + node_ + " route add " + pod.ip + "/32 dev " + pod.host_veth + " scope link");
        return pod;
    }

    // Another namespace of the lab (e.g. a second node), removed with it.
    std::string add_namespace(const std::string& suffix) {
        const std::string name = prefix_ + "-" + suffix;
        must("ip netns add " + name);
        created_.push_back(name);
        must("ip -n " + name + " link set lo up");
        return name;
    }

    // Runs a set-up command; on failure the lab is removed and it throws.
    void must(const std::string& command) {
        std::string output;
        if (run(command, &output) != 0) {
            remove();  // a partial set-up is cleaned up too (a throwing constructor runs no destructor)
            throw std::runtime_error(command + ": " + output);
        }
    }

    // ifindex of a device in the node namespace.
    int node_ifindex(const std::string& ifname) const {
        EnterNetns inside(node_);
        const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
        if (ifindex == 0) throw std::runtime_error("no device " + ifname + " in " + node_);
        return ifindex;
    }

    // Runs `command` inside the pod's namespace.
    static int in_pod(const Pod& pod, const std::string& command, std::string* output = nullptr) {
        return run("ip netns exec " + pod.netns + " " + command, output);
    }

    // True if every one of `count` echo requests got its reply.
    static bool ping(const Pod& from, const std::string& to, int count, std::string* output = nullptr) {
        std::string text;
        const int status = in_pod(from, fmt::format("ping -n -c {} -i 0.2 -W 1 {}", count, to), &text);
        if (output) *output = text;
        return status == 0 && text.find(" 0% packet loss") != std::string::npos;
    }

private:
    void remove() {
        for (const auto& name : created_) run("ip netns del " + name);
        created_.clear();
    }
    int number_;
    std::string prefix_;
    std::string node_;
    std::vector<std::string> created_;
};

// A command running in the background (e.g. a server in a pod), killed and
// reaped when destroyed.
class BackgroundCommand {
public:
    explicit BackgroundCommand(const std::string& command) {
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        posix_spawnattr_t attributes;
        posix_spawnattr_init(&attributes);
        posix_spawnattr_setpgroup(&attributes, 0);  // its own group, so the kill reaches its children
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
        std::string shell_command = "exec " + command;
        const char* argv[] = {"/bin/sh", "-c", shell_command.c_str(), nullptr};
        const int error =
            ::posix_spawn(&pid_, "/bin/sh", &actions, &attributes, const_cast<char* const*>(argv), environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
        if (error != 0) throw std::runtime_error("cannot start " + command + ": " + std::strerror(error));
    }
    ~BackgroundCommand() {
        ::kill(-pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    BackgroundCommand(const BackgroundCommand&) = delete;
    BackgroundCommand& operator=(const BackgroundCommand&) = delete;

private:
    pid_t pid_ = -1;
};

// Retries `attempt` (true = done) until it succeeds or `tries` run out,
// for servers that take a moment to listen.
template <typename Attempt>
bool eventually(Attempt attempt, int tries = 20) {
    for (int i = 0; i < tries; ++i) {
        if (attempt()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    return false;
}

}  // namespace membrane::kernel::test
