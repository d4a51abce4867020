#include <gtest/gtest.h>

#include <map>

#include "cni_environment.hpp"
#include "cni_error.hpp"

namespace membrane::cni {
namespace {

EnvLookup fake(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

std::map<std::string, std::string> full_add() {
    return {{"CNI_COMMAND", "ADD"},      {"CNI_CONTAINERID", "abc123"}, {"CNI_NETNS", "/var/run/netns/pod"},
            {"CNI_IFNAME", "eth0"},      {"CNI_PATH", "/opt/cni/bin"},  {"CNI_ARGS", "IgnoreUnknown=1"}};
}

ErrorCode code_of(const std::map<std::string, std::string>& vars) {
    try {
        read_environment(fake(vars));
    } catch (const CniError& e) {
        return e.code();
    }
    ADD_FAILURE() << "no error";
    return ErrorCode::Internal;
}

TEST(CniEnvironment, ReadsEveryVariableOfAnAdd) {
    const Environment env = read_environment(fake(full_add()));
    EXPECT_EQ(env.command, Command::Add);
    EXPECT_EQ(env.container_id, "abc123");
    EXPECT_EQ(env.netns, "/var/run/netns/pod");
    EXPECT_EQ(env.ifname, "eth0");
    EXPECT_EQ(env.path, "/opt/cni/bin");
    EXPECT_EQ(env.args, "IgnoreUnknown=1");
}

TEST(CniEnvironment, MissingCommandIsCode4) { EXPECT_EQ(code_of({}), ErrorCode::InvalidEnvironment); }

TEST(CniEnvironment, UnknownCommandIsCode4) {
    auto vars = full_add();
    vars["CNI_COMMAND"] = "FROB";
    EXPECT_EQ(code_of(vars), ErrorCode::InvalidEnvironment);
}

TEST(CniEnvironment, VersionNeedsNothingElse) {
    EXPECT_EQ(read_environment(fake({{"CNI_COMMAND", "VERSION"}})).command, Command::Version);
}

TEST(CniEnvironment, GcAndStatusAreRecognisedToBeRefusedLater) {
    EXPECT_EQ(read_environment(fake({{"CNI_COMMAND", "GC"}})).command, Command::Gc);
    EXPECT_EQ(read_environment(fake({{"CNI_COMMAND", "STATUS"}})).command, Command::Status);
}

TEST(CniEnvironment, MessageNamesEveryMissingVariable) {
    auto vars = full_add();
    vars.erase("CNI_NETNS");
    vars.erase("CNI_IFNAME");
    try {
        read_environment(fake(vars));
        FAIL() << "no error";
    } catch (const CniError& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidEnvironment);
        EXPECT_NE(e.msg().find("CNI_NETNS"), std::string::npos) << e.msg();
        EXPECT_NE(e.msg().find("CNI_IFNAME"), std::string::npos) << e.msg();
        EXPECT_NE(e.msg().find("ADD"), std::string::npos) << e.msg();
    }
}

TEST(CniEnvironment, DelNeedsNoNetns) {
    auto vars = full_add();
    vars["CNI_COMMAND"] = "DEL";
    vars.erase("CNI_NETNS");
    const Environment env = read_environment(fake(vars));
    EXPECT_EQ(env.command, Command::Del);
    EXPECT_TRUE(env.netns.empty());
}

TEST(CniEnvironment, CheckNeedsNetns) {
    auto vars = full_add();
    vars["CNI_COMMAND"] = "CHECK";
    vars.erase("CNI_NETNS");
    EXPECT_EQ(code_of(vars), ErrorCode::InvalidEnvironment);
}

TEST(CniEnvironment, EmptyRequiredVariableCountsAsMissing) {
    auto vars = full_add();
    vars["CNI_CONTAINERID"] = "";
    EXPECT_EQ(code_of(vars), ErrorCode::InvalidEnvironment);
}

TEST(CniEnvironment, ContainerIdFollowsTheSpec) {
    EXPECT_EQ(container_id_problem("a"), "");
    EXPECT_EQ(container_id_problem("0abc_def.g-h"), "");
    EXPECT_NE(container_id_problem(""), "");
    EXPECT_NE(container_id_problem("-abc"), "");
    EXPECT_NE(container_id_problem("ab/c"), "");
    EXPECT_NE(container_id_problem("ab c"), "");
    auto vars = full_add();
    vars["CNI_CONTAINERID"] = "_bad";
    EXPECT_EQ(code_of(vars), ErrorCode::InvalidEnvironment);
}

TEST(CniEnvironment, InterfaceNameFollowsTheSpec) {
    EXPECT_EQ(interface_name_problem("eth0"), "");
    EXPECT_EQ(interface_name_problem("a23456789012345"), "");  // 15 characters
    EXPECT_NE(interface_name_problem("a234567890123456"), "");
    EXPECT_NE(interface_name_problem(""), "");
    EXPECT_NE(interface_name_problem("."), "");
    EXPECT_NE(interface_name_problem(".."), "");
    EXPECT_NE(interface_name_problem("eth/0"), "");
    EXPECT_NE(interface_name_problem("eth:0"), "");
    EXPECT_NE(interface_name_problem("eth 0"), "");
    auto vars = full_add();
    vars["CNI_IFNAME"] = "bad name";
    EXPECT_EQ(code_of(vars), ErrorCode::InvalidEnvironment);
}

}  // namespace
}  // namespace membrane::cni
