// The SDK's ConfigReader, as module authors use it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "membrane/config.hpp"

namespace membrane {
namespace {

using ::testing::ElementsAre;

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("/m.toml")); }

std::string error_of(auto&& read) {
    try {
        read();
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no ConfigError";
    return {};
}

TEST(ConfigReader, ReadsTypedValuesAndDefaults) {
    const auto doc = parse("i = 5\nb = true\nf = 1.5\nwhole = 2\ns = \"x\"\nl = [\"a\", \"b\"]\n[t]\nk = 1\n");
    ConfigReader read(doc, "module.m");
    EXPECT_EQ(read.get<int>("i", 0), 5);
    EXPECT_EQ(read.get<bool>("b", false), true);
    EXPECT_EQ(read.get<double>("f", 0), 1.5);
    EXPECT_EQ(read.get<double>("whole", 0), 2.0);  // an integer is a number
    EXPECT_EQ(read.get<std::string>("s", ""), "x");
    EXPECT_THAT(read.strings("l"), ElementsAre("a", "b"));
    EXPECT_EQ(read.table("t").size(), 1u);
    EXPECT_EQ(read.get<int>("absent", 7), 7);
    EXPECT_TRUE(read.table("absent_table").empty());
    EXPECT_NO_THROW(read.finish());
}

TEST(ConfigReader, ErrorsNamePositionKeyAndBothTypes) {
    const auto doc = parse("a = 1\nb = \"s\"\nc = [1]\nd = 300\ne = -1\n");
    ConfigReader read(doc, "module.m");
    EXPECT_EQ(error_of([&] { read.get<std::string>("a", ""); }), "/m.toml:1:5: 'a' in [module.m] must be a string, not an integer");
    EXPECT_EQ(error_of([&] { read.get<bool>("b", false); }), "/m.toml:2:5: 'b' in [module.m] must be a boolean, not a string");
    EXPECT_EQ(error_of([&] { read.strings("c"); }), "/m.toml:3:6: 'c' in [module.m] must be an array of strings, not an integer");
    EXPECT_EQ(error_of([&] { read.get<std::uint8_t>("d", 0); }), "/m.toml:4:5: 'd' in [module.m] is out of range (300)");
    EXPECT_EQ(error_of([&] { read.get<unsigned>("e", 0); }), "/m.toml:5:5: 'e' in [module.m] is out of range (-1)");
    EXPECT_EQ(error_of([&] { read.table("a"); }), "/m.toml:1:5: 'a' in [module.m] must be a table, not an integer");
    EXPECT_EQ(error_of([&] { read.required<int>("zz"); }), "/m.toml:1:1: [module.m] is missing the required key 'zz'");
}

TEST(ConfigReader, UnknownKeyAtTopLevelAndInTable) {
    const auto doc = parse("known = 1\n[section]\nextra = 2\n");
    ConfigReader top(doc, "");
    top.get<int>("known", 0);
    EXPECT_EQ(error_of([&] { top.finish(); }), "/m.toml:2:2: unknown key 'section' at the top level");
    ConfigReader section(top.table("section"), "section");
    EXPECT_EQ(error_of([&] { section.finish(); }), "/m.toml:3:1: unknown key 'extra' in [section]");
}

TEST(ConfigReader, CallerChecksArePositioned) {
    const auto doc = parse("port = 70000\nlist = [\"ok\", \"bad\"]\n");
    ConfigReader read(doc, "module.m");
    EXPECT_EQ(read.error("port", "must be below 65536").what(), std::string("/m.toml:1:8: 'port' in [module.m] must be below 65536"));
    const toml::node& bad = *doc["list"].as_array()->get(1);
    EXPECT_EQ(read.error_at(bad, "list", "has 'bad'").what(), std::string("/m.toml:2:15: 'list' in [module.m] has 'bad'"));
}

TEST(ConfigReader, CopiedTableFallsBackToTheKeyPosition) {
    // toml++ drops value positions on copy but keeps key positions.
    const auto doc = parse("\n  a = 1\n");
    const toml::table copy = doc;
    ConfigReader read(copy, "module.m");
    EXPECT_EQ(error_of([&] { read.get<bool>("a", false); }), "/m.toml:2:3: 'a' in [module.m] must be a boolean, not an integer");
}

}  // namespace
}  // namespace membrane
