// write_state_file / read_state_file: the one way state records are written
// and read. A crash mid-write leaves the old record; a corrupt record is
// refused with the file's name and the way out. The journal beside a record
// (append_state_record): each record durable when appended, a crash
// mid-append costs that record only.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "crash_midway.hpp"
#include "support/state_folder.hpp"
#include "state/state_file.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;
using ::testing::ElementsAre;
using ::testing::StartsWith;

std::string text_of(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(StateFile, WritesReadBackAndLeaveNoTemporaryFile) {
    StateFolder state;
    const auto path = state / "sub" / "record.json";
    EXPECT_FALSE(read_state_file(path)) << "absent: nullopt";
    write_state_file(path, {{"format", 1}, {"items", {1, 2, 3}}});
    write_state_file(path, {{"format", 1}, {"items", {4}}});
    EXPECT_EQ(read_state_file(path), (nlohmann::json{{"format", 1}, {"items", {4}}}));
    EXPECT_FALSE(std::filesystem::exists(state / "sub" / "record.json.tmp"));
}

TEST(StateFile, ACrashMidWriteLeavesTheOldRecordWhole) {
    StateFolder state;
    const auto path = state / "record.json";
    const nlohmann::json old_record{{"format", 1}, {"items", {"old"}}};
    write_state_file(path, old_record);
    nlohmann::json big{{"format", 1}, {"items", nlohmann::json::array()}};
    for (int i = 0; i < 1000; ++i) big["items"].push_back("new-" + std::to_string(i));

    ASSERT_EQ(crash_midway([&] { write_state_file(path, big); }), kCrashedMidway) << "the write reached its middle";

    EXPECT_EQ(read_state_file(path), old_record) << "the record a restart finds is the old one, whole";
    const auto left = text_of(state / "record.json.tmp");
    EXPECT_GT(left.size(), 0u) << "the crash did happen mid-write: half a temporary file is left";
    EXPECT_LT(left.size(), big.dump(2).size());
    write_state_file(path, big);
    EXPECT_EQ(read_state_file(path), big) << "the next write replaces the leftover";
}

// What the file or folder behind an open fd is, for the recorded calls.
std::string path_of(int fd) {
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec).string();
}

// Records every system call a write makes, then makes the real one.
struct RecordedCalls {
    std::vector<std::string> calls;
    RecordedCalls() {
        set_state_file_calls({[this](int fd, const void* data, std::size_t size) {
                                  calls.push_back("write " + path_of(fd));
                                  return static_cast<long>(::write(fd, data, size));
                              },
                              [this](int fd) {
                                  calls.push_back("fsync " + path_of(fd));
                                  return ::fsync(fd);
                              },
                              [this](const char* from, const char* to) {
                                  calls.push_back(std::string("rename ") + from + " " + to);
                                  return std::rename(from, to);
                              }});
    }
    ~RecordedCalls() { set_state_file_calls({}); }
    RecordedCalls(const RecordedCalls&) = delete;
    RecordedCalls& operator=(const RecordedCalls&) = delete;
};

// The durability order: the temporary file's data is on disk before it
// replaces the record, and the rename is on disk (the folder fsynced) before
// write_state_file returns.
TEST(StateFile, WritesFsyncsRenamesThenFsyncsTheFolder) {
    StateFolder state;
    const auto path = state / "record.json";
    const auto temporary = path.string() + ".tmp";
    RecordedCalls recorded;
    write_state_file(path, {{"format", 1}});
    // Two halves (the crash seam splits the text), each one write here.
    EXPECT_THAT(recorded.calls, ElementsAre("write " + temporary, "write " + temporary, "fsync " + temporary,
                                            "rename " + temporary + " " + path.string(),
                                            "fsync " + state.path().string()));
}

TEST(StateFile, AFolderThatCannotBeFsyncedIsAnErrorNamingIt) {
    StateFolder state;
    const auto path = state / "record.json";
    const auto fail_on_folder = [&](int fd) {
        if (path_of(fd) != state.path().string()) return ::fsync(fd);
        errno = EIO;
        return -1;
    };
    set_state_file_calls({{}, fail_on_folder, {}});
    try {
        write_state_file(path, {{"format", 1}});
        set_state_file_calls({});
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        set_state_file_calls({});
        EXPECT_THAT(e.what(), StartsWith(state.path().string() + ": cannot fsync the folder"));
    }
}

TEST(StateFile, ACorruptRecordIsRefusedByNameWithTheWayOut) {
    StateFolder state;
    state.write("record.json", "{\"format\": 1, \"items\": [");
    try {
        read_state_file(state / "record.json");
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), StartsWith((state / "record.json").string() + ": not valid JSON"));
        EXPECT_THAT(e.what(), HasSubstr("the agent does not start on a record it cannot trust"));
        EXPECT_THAT(e.what(), HasSubstr("move it aside"));
    }
    EXPECT_TRUE(std::filesystem::exists(state / "record.json")) << "left where it is, for the operator";
}

TEST(StateJournal, RecordsComeBackInOrderAndEachIsOnDiskWhenAppendReturns) {
    StateFolder state;
    const auto path = state / "journal";
    EXPECT_TRUE(read_state_records(path).records.empty()) << "absent: nothing";
    std::size_t bytes = 0;
    {
        RecordedCalls recorded;
        bytes += append_state_record(path, {{"n", 1}});
        // New: the file's data, then the folder (its name) on disk before it returns.
        EXPECT_THAT(recorded.calls, ElementsAre("write " + path.string(), "write " + path.string(),
                                                "fsync " + path.string(), "fsync " + state.path().string()));
        recorded.calls.clear();
        bytes += append_state_record(path, {{"n", 2}});
        EXPECT_THAT(recorded.calls, ElementsAre("write " + path.string(), "write " + path.string(),
                                                "fsync " + path.string()));
    }
    const auto read = read_state_records(path);
    EXPECT_EQ(read.records, (std::vector<nlohmann::json>{{{"n", 1}}, {{"n", 2}}}));
    EXPECT_FALSE(read.torn_tail);
    EXPECT_EQ(read.bytes, bytes);
    EXPECT_EQ(text_of(path), "{\"n\":1}\n{\"n\":2}\n") << "one line a record";
    remove_state_file(path);
    EXPECT_FALSE(std::filesystem::exists(path));
    remove_state_file(path);  // absent: nothing to do
}

TEST(StateJournal, ACrashMidAppendCostsThatRecordOnlyAndIsToldApart) {
    StateFolder state;
    const auto path = state / "journal";
    append_state_record(path, {{"n", 1}});
    nlohmann::json big{{"items", nlohmann::json::array()}};
    for (int i = 0; i < 1000; ++i) big["items"].push_back("new-" + std::to_string(i));

    ASSERT_EQ(crash_midway([&] { append_state_record(path, big); }), kCrashedMidway) << "the append reached its middle";

    const auto read = read_state_records(path);
    EXPECT_EQ(read.records, (std::vector<nlohmann::json>{{{"n", 1}}})) << "the records before it, whole";
    EXPECT_TRUE(read.torn_tail) << "the cut record is dropped, and said to be";
    EXPECT_GT(read.bytes, text_of(path).find('\n') + 1) << "the crash did leave half a record";
}

TEST(StateJournal, ABadLineThatIsNotTheCutLastOneIsACorruptRecord) {
    StateFolder state;
    state.write("journal", "{\"n\":1}\nnot json\n{\"n\":2}\n");
    try {
        read_state_records(state / "journal");
        FAIL() << "no StateError";
    } catch (const StateError& e) {
        EXPECT_THAT(e.what(), StartsWith((state / "journal").string() + ": line 2 is not valid JSON"));
        EXPECT_THAT(e.what(), HasSubstr("the agent does not start on a record it cannot trust"));
    }
}

}  // namespace
}  // namespace membrane::kernel::test
