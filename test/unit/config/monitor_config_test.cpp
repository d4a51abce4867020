// [monitor]: the flow monitor's history and sampling, and every error with its
// file:line:column.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/agent_config.hpp"
#include "config/config_diff.hpp"
#include "config_test_support.hpp"

namespace membrane::kernel {
namespace {

using ::testing::HasSubstr;

TEST(MonitorConfig, DefaultsKeep4096EventsAndReportDropsAndVerdicts) {
    const auto monitor = parse_config(kMinimalConfig, kSource).monitor;
    EXPECT_EQ(monitor.history, 4096u);
    EXPECT_EQ(monitor.drop_sampling, 1u);
    EXPECT_EQ(monitor.verdict_sampling, 1u);
    EXPECT_EQ(monitor.trace_sampling, 0u);
    EXPECT_EQ(monitor.rate_limit, 1000u);
}

TEST(MonitorConfig, EverySetting) {
    const auto monitor = parse_config(kMinimalConfig + "[monitor]\nhistory = 100\ndrop_sampling = 0\n"
                                                       "verdict_sampling = 10\ntrace_sampling = 1\nrate_limit = 0\n",
                                      kSource)
                             .monitor;
    EXPECT_EQ(monitor, (MonitorSettings{100, 0, 10, 1, 0}));
}

TEST(MonitorConfigErrors, OutOfRangeWrongTypeAndUnknownKeysArePointedAt) {
    const auto error_of = [](const std::string& table) {
        try {
            parse_config(kMinimalConfig + "[monitor]\n" + table, kSource);
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_THAT(error_of("history = 0\n"), HasSubstr("membrane.toml:4:11: 'history' in [monitor] must be between 1 and 100000"));
    EXPECT_THAT(error_of("drop_sampling = -1\n"), HasSubstr("must be between 0 and 1000000 (0: never reported"));
    EXPECT_THAT(error_of("verdict_sampling = \"all\"\n"), HasSubstr("verdict_sampling"));
    EXPECT_THAT(error_of("rate_limit = 20000000\n"), HasSubstr("must be between 0 and 10000000 (events each CPU"));
    EXPECT_THAT(error_of("histroy = 10\n"), HasSubstr("histroy"));
}

TEST(MonitorConfig, AChangeNeedsARestart) {
    const auto before = parse_config(kMinimalConfig, kSource);
    const auto after = parse_config(kMinimalConfig + "[monitor]\nhistory = 10\n", kSource);
    const auto diff = diff_configs(before, after);
    EXPECT_TRUE(diff.restart_needed);
    EXPECT_THAT(diff.settings_needing_restart, ::testing::Contains("monitor"));
}

}  // namespace
}  // namespace membrane::kernel
