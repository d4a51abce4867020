#include "state/state_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "bpf/unique_fd.hpp"

namespace membrane::kernel {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const fs::path& path, const std::string& what) {
    throw StateError(path.string() + ": " + what + ": " + std::strerror(errno));
}

std::function<void()>& crash_point() {
    static std::function<void()> crash;
    return crash;
}

StateFileCalls real_calls() {
    return {[](int fd, const void* data, std::size_t size) { return static_cast<long>(::write(fd, data, size)); },
            [](int fd) { return ::fsync(fd); },
            [](const char* from, const char* to) { return ::rename(from, to); }};
}

StateFileCalls& calls() {
    static StateFileCalls current = real_calls();
    return current;
}

void write_all(int fd, std::string_view text, const fs::path& path) {
    std::size_t done = 0;
    while (done < text.size()) {
        const long n = calls().write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(path, "cannot write");
        }
        done += static_cast<std::size_t>(n);
    }
}

}  // namespace

void set_state_write_crash_point(std::function<void()> crash) { crash_point() = std::move(crash); }

void set_state_file_calls(StateFileCalls replacement) {
    const auto real = real_calls();
    calls().write = replacement.write ? std::move(replacement.write) : real.write;
    calls().fsync = replacement.fsync ? std::move(replacement.fsync) : real.fsync;
    calls().rename = replacement.rename ? std::move(replacement.rename) : real.rename;
}

StateError corrupt_record(const fs::path& path, const std::string& problem) {
    return StateError(path.string() + ": " + problem +
                      "; the agent does not start on a record it cannot trust (the pinned datapath keeps running): "
                      "restore the file from a backup, or move it aside to start without what it held");
}

void expect_state_format(const fs::path& path, const nlohmann::json& document, int format) {
    if (!document.is_object() || document.value("format", 0) != format) {
        throw corrupt_record(path, "unknown format (expected " + std::to_string(format) + ")");
    }
}

void write_state_file(const fs::path& path, const nlohmann::json& document) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw StateError(path.parent_path().string() + ": cannot create the folder: " + ec.message());
    const fs::path temporary = path.string() + ".tmp";
    {
        const UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) fail(temporary, "cannot create");
        const std::string text = document.dump(2) + "\n";
        const std::string_view all(text);
        // In two halves so that a test can crash between them (set_state_write_crash_point).
        write_all(fd.get(), all.substr(0, all.size() / 2), temporary);
        if (crash_point()) crash_point()();
        write_all(fd.get(), all.substr(all.size() / 2), temporary);
        if (calls().fsync(fd.get()) != 0) fail(temporary, "cannot fsync");
    }
    if (calls().rename(temporary.c_str(), path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temporary.c_str());
        errno = saved;
        fail(path, "cannot replace");
    }
    // The rename itself is durable only once the folder is.
    const UniqueFd folder(::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!folder || calls().fsync(folder.get()) != 0) fail(path.parent_path(), "cannot fsync the folder");
}

std::optional<nlohmann::json> read_state_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec) && !ec) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot read");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(path, std::string("not valid JSON (") + e.what() + ")");
    }
}

}  // namespace membrane::kernel
