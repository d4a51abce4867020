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

// The folder of `path`, fsynced: a rename, create or unlink in it is durable only then.
void fsync_folder(const fs::path& path) {
    const fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
    const UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || calls().fsync(fd.get()) != 0) fail(folder, "cannot fsync the folder");
}

std::string read_whole(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path, "cannot read");
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
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
    write_state_text(path, document.dump(2) + "\n");
}

void write_state_text(const fs::path& path, std::string_view all) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw StateError(path.parent_path().string() + ": cannot create the folder: " + ec.message());
    const fs::path temporary = path.string() + ".tmp";
    {
        const UniqueFd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) fail(temporary, "cannot create");
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
    fsync_folder(path);
}

std::size_t append_state_record(const fs::path& path, const nlohmann::json& record) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw StateError(path.parent_path().string() + ": cannot create the folder: " + ec.message());
    const bool existed = fs::exists(path, ec);
    const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) fail(path, "cannot open to append");
    const std::string line = record.dump() + "\n";
    const std::string_view all(line);
    write_all(fd.get(), all.substr(0, all.size() / 2), path);
    if (crash_point()) crash_point()();
    write_all(fd.get(), all.substr(all.size() / 2), path);
    if (calls().fsync(fd.get()) != 0) fail(path, "cannot fsync");
    if (!existed) fsync_folder(path);
    return line.size();
}

StateRecords read_state_records(const fs::path& path) {
    StateRecords out;
    std::error_code ec;
    if (!fs::exists(path, ec) && !ec) return out;
    const std::string text = read_whole(path);
    out.bytes = text.size();
    std::size_t begin = 0;
    for (std::size_t line = 1; begin < text.size(); ++line) {
        const std::size_t end = text.find('\n', begin);
        if (end == std::string::npos) {
            out.torn_tail = true;  // cut short by a crash mid-append: never answered
            break;
        }
        try {
            out.records.push_back(nlohmann::json::parse(std::string_view(text).substr(begin, end - begin)));
        } catch (const nlohmann::json::exception& e) {
            throw corrupt_record(path, "line " + std::to_string(line) + " is not valid JSON (" + e.what() + ")");
        }
        begin = end + 1;
    }
    return out;
}

void remove_state_file(const fs::path& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return;
        fail(path, "cannot remove");
    }
    fsync_folder(path);
}

std::optional<nlohmann::json> read_state_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec) && !ec) return std::nullopt;
    const std::string text = read_whole(path);
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw corrupt_record(path, std::string("not valid JSON (") + e.what() + ")");
    }
}

}  // namespace membrane::kernel
