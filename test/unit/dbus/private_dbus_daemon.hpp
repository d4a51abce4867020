// A private dbus-daemon for one test suite, on a unix socket in its own temp
// folder: stopped and removed on destruction (also when a test failed), and
// killed with the test process if that dies first. Test support; header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace membrane::test {

class PrivateDbusDaemon {
public:
    enum class Policy {
        AllowAll,    // like a session bus: anyone may own and call anything
        SystemLike,  // like the system bus: deny by default, then <include> `policy_file`
    };

    explicit PrivateDbusDaemon(Policy policy = Policy::AllowAll, const std::filesystem::path& policy_file = {}) {
        char dir_template[] = "/tmp/membrane-dbus-XXXXXX";
        if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
        dir_ = dir_template;
        // Unprivileged callers (policy tests) must reach the socket.
        chmod(dir_.c_str(), 0755);
        socket_ = dir_ / "bus";
        const auto config = dir_ / "bus.conf";
        std::ofstream(config) << config_text(policy, policy_file);
        start(config);
    }

    ~PrivateDbusDaemon() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            int status = 0;
            waitpid(pid_, &status, 0);
        }
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    PrivateDbusDaemon(const PrivateDbusDaemon&) = delete;
    PrivateDbusDaemon& operator=(const PrivateDbusDaemon&) = delete;

    std::string address() const { return "unix:path=" + socket_.string(); }
    const std::filesystem::path& dir() const { return dir_; }

private:
    std::string config_text(Policy policy, const std::filesystem::path& policy_file) const {
        std::string text = "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                           " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n";
        if (policy == Policy::AllowAll) {
            text += "  <type>session</type>\n  <listen>unix:path=@SOCKET@</listen>\n  <auth>EXTERNAL</auth>\n"
                    "  <policy context=\"default\">\n"
                    "    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n"
                    "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n"
                    "  </policy>\n";
        } else {
            // The default policy of Debian's /usr/share/dbus-1/system.conf.
            text += "  <type>system</type>\n  <listen>unix:path=@SOCKET@</listen>\n  <auth>EXTERNAL</auth>\n"
                    "  <policy context=\"default\">\n"
                    "    <allow user=\"*\"/>\n"
                    "    <deny own=\"*\"/>\n"
                    "    <deny send_type=\"method_call\"/>\n"
                    "    <allow send_type=\"signal\"/>\n"
                    "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                    "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                    "    <allow receive_type=\"method_call\"/>\n"
                    "    <allow receive_type=\"method_return\"/>\n"
                    "    <allow receive_type=\"error\"/>\n"
                    "    <allow receive_type=\"signal\"/>\n"
                    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
                    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
                    "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Peer\"/>\n"
                    "  </policy>\n"
                    "  <include>" + policy_file.string() + "</include>\n";
        }
        text += "</busconfig>\n";
        const std::string placeholder = "@SOCKET@";
        text.replace(text.find(placeholder), placeholder.size(), socket_.string());
        return text;
    }

    void start(const std::filesystem::path& config) {
        int ready[2];
        if (pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        // Built before fork(): the child of a threaded process must not allocate.
        const std::string config_arg = "--config-file=" + config.string();
        const std::string log_path = (dir_ / "daemon.log").string();
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
            dup2(ready[1], 3);                  // dup2 clears CLOEXEC on fd 3
            // Its chatter (fd limits, policy denials) goes to a log beside the socket.
            const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (log_fd >= 0) dup2(log_fd, 2);
            execlp("dbus-daemon", "dbus-daemon", "--nofork", "--nosyslog", config_arg.c_str(), "--print-address=3",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        close(ready[1]);
        // The daemon prints its address once it listens.
        std::string line;
        char c = 0;
        while (read(ready[0], &c, 1) == 1 && c != '\n') line += c;
        close(ready[0]);
        if (line.empty()) {
            std::ifstream log(dir_ / "daemon.log");
            const std::string why((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
            throw std::runtime_error("dbus-daemon did not start (config " + config.string() + "): " + why);
        }
    }

    std::filesystem::path dir_;
    std::filesystem::path socket_;
    pid_t pid_ = -1;
};

}  // namespace membrane::test
