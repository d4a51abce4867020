// Runs a command as a user would (busctl, membranectl) and captures its
// output and exit status. Test support; header-only.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace membrane::test {

struct ProcessResult {
    int exit_code = -1;  // 128 + signal when killed
    std::string out;
    std::string err;
};

inline std::string read_whole_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// `env` entries are set (a value of "\x01unset" removes the variable).
inline ProcessResult run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {}) {
    char out_template[] = "/tmp/membrane-proc-XXXXXX";
    const char* dir = mkdtemp(out_template);
    if (!dir) throw std::runtime_error("mkdtemp failed");
    const std::filesystem::path out_path = std::filesystem::path(dir) / "out";
    const std::filesystem::path err_path = std::filesystem::path(dir) / "err";

    // Everything the child needs is built here: after fork() in a threaded
    // process the child may only make async-signal-safe calls (no malloc).
    std::map<std::string, std::string> merged_env;
    for (char** e = environ; *e; ++e) {
        const std::string entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string::npos) merged_env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    for (const auto& [name, value] : env) {
        if (value == "\x01unset")
            merged_env.erase(name);
        else
            merged_env[name] = value;
    }
    std::vector<std::string> env_entries;
    for (const auto& [name, value] : merged_env) env_entries.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_entries) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> args_copy = argv;
    std::vector<char*> args;
    for (auto& a : args_copy) args.push_back(a.data());
    args.push_back(nullptr);

    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int null_fd = open("/dev/null", O_RDONLY);
        if (out_fd < 0 || err_fd < 0 || null_fd < 0) _exit(126);
        dup2(null_fd, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        execvpe(args[0], args.data(), envp.data());
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ProcessResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = read_whole_file(out_path);
    result.err = read_whole_file(err_path);
    std::filesystem::remove_all(dir);
    return result;
}

// Who runs a command, in tests of what an unprivileged caller may do.
enum class Caller { root, nobody };

// argv as `caller` runs it: nobody is uid/gid 65534 with no groups.
inline std::vector<std::string> run_as(Caller caller, std::vector<std::string> argv) {
    if (caller == Caller::nobody) argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    return argv;
}

}  // namespace membrane::test
