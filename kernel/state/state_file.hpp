// The agent's records in state_dir (identities, endpoints, address leases,
// BPF ownership): JSON documents, each written through write_state_file and
// read through read_state_file. Every state writer uses these two, so every
// record gets the same guarantees:
//
// - Atomic replacement: the document goes to "<name>.tmp" in the same folder,
//   which is fsynced, renamed over "<name>", and the folder is fsynced (the
//   rename is durable only then). A crash at any instant leaves the old or
//   the new document, never half of one; a leftover .tmp is overwritten by
//   the next write.
// - One policy for a corrupt record: the agent refuses to start. A record
//   that is not JSON, or not what the agent wrote, raises a StateError that
//   names the file, what is wrong and what to do (corrupt_record). Starting
//   without it would act on a partial picture (forget endpoints and prune
//   their map entries, lease an address twice, renumber identities), while a
//   stopped agent leaves the pinned datapath running as it was.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace membrane::kernel {

// A state file that cannot be read or written, or holds what the agent did
// not write. The message starts with the file's path.
class StateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Throws StateError.
void write_state_file(const std::filesystem::path& path, const nlohmann::json& document);
// The same for a document already serialized (one JSON value as text), for
// a large one put together piece by piece rather than copied whole into JSON.
void write_state_text(const std::filesystem::path& path, std::string_view text);
// nullopt when the file does not exist; corrupt_record when it is not JSON.
std::optional<nlohmann::json> read_state_file(const std::filesystem::path& path);

// A journal: records appended to a file one a line, for a record whose
// changes are small beside the whole (kernel/cluster/objects_file.hpp).
// append_state_record writes `record` as one line of compact JSON and fsyncs
// the file before it returns (and the folder, when the file is new), so the
// record is durable then; it returns the bytes appended. A crash mid-append
// leaves the last line cut short (no newline): read_state_records drops it
// and says so, and the journal's owner must rewrite the file before it
// appends again (an append after a cut line would make both one bad line).
// Throws StateError.
std::size_t append_state_record(const std::filesystem::path& path, const nlohmann::json& record);
struct StateRecords {
    std::vector<nlohmann::json> records;  // in the order appended
    bool torn_tail = false;               // a last line without its newline was dropped
    std::size_t bytes = 0;                // the file's size
};
// Empty when the file does not exist; corrupt_record for a whole line that is not JSON.
StateRecords read_state_records(const std::filesystem::path& path);
// Removes the file, durably (the folder fsynced); nothing when it does not exist. Throws StateError.
void remove_state_file(const std::filesystem::path& path);

// The error of the corrupt-record policy: "<path>: <problem>; " and the way out.
StateError corrupt_record(const std::filesystem::path& path, const std::string& problem);

// Every record carries "format": the version of its layout. Throws
// corrupt_record unless `document` is of `format`.
void expect_state_format(const std::filesystem::path& path, const nlohmann::json& document, int format);

// Test seam: `crash` runs after the first half of a temporary file (or of
// an appended record) is written and before the rest (nothing when empty,
// the default). A test
// makes it _exit() in a child process, as a crash mid-write would.
void set_state_write_crash_point(std::function<void()> crash);

// Test seam: the system calls a write goes through, in the order the
// guarantees above need them: write(temporary)..., fsync(temporary),
// rename(temporary, name), fsync(folder). A test wraps them to record that
// order or to make one fail; set_state_file_calls({}) restores the real ones.
struct StateFileCalls {
    std::function<long(int fd, const void* data, std::size_t size)> write;
    std::function<int(int fd)> fsync;
    std::function<int(const char* from, const char* to)> rename;
};
void set_state_file_calls(StateFileCalls calls);

}  // namespace membrane::kernel
