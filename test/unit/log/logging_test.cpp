// Logging: journald style (priority prefix, no time) vs plain, shared sinks,
// live level changes, and the JOURNAL_STREAM detection.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/scoped_env.hpp"
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "log/logging.hpp"
#include "membrane/config.hpp"

namespace membrane::kernel {
namespace {

using ::testing::MatchesRegex;

using membrane::test::ScopedEnv;

class Logging : public ::testing::Test {
protected:
    void use(LogStyle style, const std::string& level = "info") {
        out_.str("");
        setup_logging(level, style, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_, true));
    }
    std::string output() const { return out_.str(); }
    std::ostringstream out_;
};

TEST_F(Logging, JournaldStyleHasPriorityPrefixAndNoTime) {
    use(LogStyle::journald, "debug");
    auto log = make_logger("counter");
    log->debug("d");
    log->info("hello {}", 1);
    log->warn("w");
    log->error("e");
    EXPECT_EQ(output(), "<7>[counter] d\n<6>[counter] hello 1\n<4>[counter] w\n<3>[counter] e\n");
}

TEST_F(Logging, PlainStyleHasTimeLevelAndName) {
    use(LogStyle::plain);
    make_logger("policy-l4")->warn("careful");
    EXPECT_THAT(output(), MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} warning +\\[policy-l4\\] careful\n"));
}

TEST_F(Logging, LoggersShareSinksAndFollowALaterSetup) {
    auto early = make_logger("early");
    use(LogStyle::journald);
    auto late = make_logger("late");
    early->info("a");
    late->info("b");
    spdlog::info("c");  // the default logger
    EXPECT_EQ(output(), "<6>[early] a\n<6>[late] b\n<6>[membraned] c\n");
}

TEST_F(Logging, TwoLoggersMayShareAName) {
    use(LogStyle::journald);
    auto first = make_logger("counter");
    auto second = make_logger("counter");  // a reloaded module's next generation
    second->info("x");
    EXPECT_EQ(output(), "<6>[counter] x\n");
}

TEST_F(Logging, LevelFiltersAndChangesLive) {
    use(LogStyle::journald, "warn");
    auto log = make_logger("bus");
    log->info("hidden");
    log->warn("shown");
    set_log_level("debug");
    log->debug("now shown");
    spdlog::debug("default too");
    set_log_level("error");
    log->warn("hidden again");
    EXPECT_EQ(output(), "<4>[bus] shown\n<7>[bus] now shown\n<7>[membraned] default too\n");
}

TEST_F(Logging, UnknownLevelIsAConfigError) {
    use(LogStyle::plain);
    EXPECT_THROW(set_log_level("verbose"), ConfigError);
    EXPECT_THROW(set_log_level("warning"), ConfigError);  // config words only
    EXPECT_THROW(setup_logging("off", LogStyle::plain, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)),
                 ConfigError);
    for (auto level : {"trace", "debug", "info", "warn", "error"}) EXPECT_NO_THROW(set_log_level(level)) << level;
}

TEST(LogStyleDetection, JournalStreamMustNameOurStderr) {
    struct stat st {};
    ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
    {
        ScopedEnv env("JOURNAL_STREAM", std::nullopt);
        EXPECT_EQ(detect_log_style(), LogStyle::plain);
    }
    {
        ScopedEnv env("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
        EXPECT_EQ(detect_log_style(), LogStyle::journald);
    }
    {
        // Inherited from a parent whose stderr was the journal; ours is not.
        ScopedEnv env("JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1));
        EXPECT_EQ(detect_log_style(), LogStyle::plain);
    }
    {
        ScopedEnv env("JOURNAL_STREAM", "garbage");
        EXPECT_EQ(detect_log_style(), LogStyle::plain);
    }
}

}  // namespace
}  // namespace membrane::kernel
