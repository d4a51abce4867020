// The one table of counter names (sdk/include/membrane/stat_names.hpp): every
// reason of enum membrane_stat has a unique, stable name, and the README's
// Counters section lists each.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "membrane/stat_names.hpp"

namespace membrane {
namespace {

TEST(StatNames, EveryReasonHasOneUniqueName) {
    std::set<std::uint32_t> numbers;
    std::set<std::string_view> names;
    const std::regex snake("[a-z][a-z0-9_]*");
    for (const auto& reason : kStatReasons) {
        EXPECT_LT(reason.number, static_cast<std::uint32_t>(MBR_STAT_MAX)) << reason.name;
        EXPECT_TRUE(numbers.insert(reason.number).second) << "number " << reason.number << " twice";
        EXPECT_TRUE(names.insert(reason.name).second) << reason.name << " twice";
        EXPECT_TRUE(std::regex_match(std::string(reason.name), snake)) << reason.name;
        EXPECT_FALSE(reason.meaning.empty()) << reason.name;
    }
    // Dense from 0: the enum has no gaps so far, so a missing line is a forgotten name.
    for (std::uint32_t number = 0; number < kStatReasons.size(); ++number) EXPECT_TRUE(numbers.contains(number)) << number;
}

TEST(StatNames, StableNames) {
    // Scripts match on these: renaming one breaks them.
    EXPECT_EQ(stat_name(MBR_STAT_ENTRY_FROM_NETDEV), "entry_from_netdev");
    EXPECT_EQ(stat_name(MBR_STAT_DROP_INVALID), "drop_invalid");
    EXPECT_EQ(stat_name(MBR_STAT_DROP_SPOOFED), "drop_spoofed");
    EXPECT_EQ(stat_name(MBR_STAT_DROP_NOT_IPV4), "drop_not_ipv4");
    EXPECT_EQ(stat_name(MBR_STAT_DROP_STAGE_MISSING), "drop_stage_missing");
    EXPECT_EQ(stat_name(MBR_STAT_TTL_EXCEEDED), "ttl_exceeded");
    EXPECT_EQ(stat_name(MBR_STAT_DROP_POLICY), "drop_policy");
    EXPECT_EQ(stat_name(MBR_STAT_MAX), "reason_16");
}

TEST(StatNames, TheReadmeListsEveryName) {
    std::ifstream file(std::string(MEMBRANE_SOURCE_DIR) + "/README.md");
    std::stringstream text;
    text << file.rdbuf();
    for (const auto& reason : kStatReasons)
        EXPECT_NE(text.str().find("| `" + std::string(reason.name) + "` |"), std::string::npos)
            << reason.name << " is not in the README's Counters table";
}

}  // namespace
}  // namespace membrane
