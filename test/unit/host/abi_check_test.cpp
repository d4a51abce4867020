#include "host/abi_check.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "host/module_host.hpp"
#include "membrane/names.hpp"

namespace membrane::kernel {
namespace {

AbiDescriptor module_like_host(const char* name) {
    AbiDescriptor d = host_abi_descriptor();
    std::memset(d.module_name, 0, sizeof d.module_name);
    std::strncpy(d.module_name, name, sizeof d.module_name - 1);
    return d;
}

TEST(AbiCheck, SameBuildIsAccepted) {
    EXPECT_EQ(check_abi(host_abi_descriptor(), module_like_host("counter"), "counter"), std::nullopt);
}

TEST(AbiCheck, OlderMinorIsAccepted) {
    AbiDescriptor host = host_abi_descriptor();
    host.sdk_minor += 2;
    EXPECT_EQ(check_abi(host, module_like_host("counter"), "counter"), std::nullopt);
}

TEST(AbiCheck, OtherMajorIsRefusedNamingBothVersions) {
    AbiDescriptor m = module_like_host("counter");
    m.sdk_major = 99;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("SDK 99." + std::to_string(kSdkMinor)), std::string::npos) << *why;
    EXPECT_NE(why->find("provides SDK " + std::to_string(kSdkMajor) + "." + std::to_string(kSdkMinor)),
              std::string::npos)
        << *why;
}

TEST(AbiCheck, NewerMinorIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    m.sdk_minor = host_abi_descriptor().sdk_minor + 1;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("needs Membrane SDK"), std::string::npos) << *why;
}

TEST(AbiCheck, OtherStandardLibraryIsRefusedNamingBoth) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.stdlib, "libc++ 170000");
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("libc++ 170000"), std::string::npos) << *why;
    EXPECT_NE(why->find(descriptor_field(host_abi_descriptor().stdlib, sizeof m.stdlib)), std::string::npos)
        << *why;
}

TEST(AbiCheck, UnknownCompilerIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.compiler, "msvc 19.3");
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("msvc 19.3"), std::string::npos) << *why;
}

TEST(AbiCheck, ClangModuleForGccHostIsAccepted) {
    AbiDescriptor m = module_like_host("counter");
    std::strcpy(m.compiler, "clang 14.0.6");
    EXPECT_EQ(check_abi(host_abi_descriptor(), m, "counter"), std::nullopt);
}

TEST(AbiCheck, NameMustMatchTheFile) {
    auto why = check_abi(host_abi_descriptor(), module_like_host("other"), "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("'other'"), std::string::npos) << *why;
}

TEST(AbiCheck, GarbageMagicIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    m.magic = 0;
    EXPECT_TRUE(check_abi(host_abi_descriptor(), m, "counter"));
}

TEST(AbiCheck, UnterminatedFieldsAreReadWithinBounds) {
    AbiDescriptor m = module_like_host("counter");
    std::memset(m.stdlib, 'x', sizeof m.stdlib);  // no NUL at all
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find(std::string(sizeof m.stdlib, 'x')), std::string::npos);
}

TEST(AbiCheck, OtherSpdlogMinorIsRefusedNamingBothVersionsAndTheLibrary) {
    AbiDescriptor m = module_like_host("counter");
    m.spdlog.minor += 1;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    const auto& host = host_abi_descriptor().spdlog;
    EXPECT_NE(why->find("spdlog " + std::to_string(m.spdlog.major) + "." + std::to_string(m.spdlog.minor)),
              std::string::npos)
        << *why;
    EXPECT_NE(why->find("this agent uses spdlog " + std::to_string(host.major) + "." + std::to_string(host.minor)),
              std::string::npos)
        << *why;
}

TEST(AbiCheck, OtherTomlMinorIsRefused) {
    AbiDescriptor m = module_like_host("counter");
    m.tomlplusplus.minor += 1;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("toml++"), std::string::npos) << *why;
}

TEST(AbiCheck, FmtNeedsOnlyTheSameMajor) {
    AbiDescriptor m = module_like_host("counter");
    m.fmt.minor += 1;
    m.fmt.patch += 1;
    EXPECT_EQ(check_abi(host_abi_descriptor(), m, "counter"), std::nullopt);
    m.fmt.major += 1;
    auto why = check_abi(host_abi_descriptor(), m, "counter");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("fmt " + std::to_string(m.fmt.major) + "."), std::string::npos) << *why;
}

TEST(AbiCheck, TomlPatchMayDiffer) {
    AbiDescriptor m = module_like_host("counter");
    m.tomlplusplus.patch += 1;
    m.spdlog.patch += 1;
    EXPECT_EQ(check_abi(host_abi_descriptor(), m, "counter"), std::nullopt);
}

// --- reading the descriptor from the file (test modules: unit/host/modules/) --

std::filesystem::path test_module(const std::string& stem) {
    return std::filesystem::path(MEMBRANE_TEST_MODULE_DIR) / (stem + ".so");
}

std::string read_error(const std::filesystem::path& file) {
    try {
        read_abi_descriptor(file);
    } catch (const AbiReadError& e) {
        return e.what();
    }
    return "";
}

TEST(ReadAbiDescriptor, ReadsWhatMembraneModuleWroteWithoutLoadingTheFile) {
    const AbiDescriptor d = read_abi_descriptor(test_module("good"));
    EXPECT_EQ(d.magic, kAbiMagic);
    EXPECT_EQ(d.size, sizeof(AbiDescriptor));
    EXPECT_EQ(d.sdk_major, kSdkMajor);
    EXPECT_EQ(d.sdk_minor, kSdkMinor);
    EXPECT_EQ(descriptor_field(d.module_name, sizeof d.module_name), "good");
    EXPECT_EQ(check_abi(host_abi_descriptor(), d, "good"), std::nullopt);
}

TEST(ReadAbiDescriptor, ReadsAnotherMajorWithoutRunningItsConstructor) {
    // bomb.so aborts in its static constructor: reading it must not run it.
    const AbiDescriptor d = read_abi_descriptor(test_module("bomb"));
    EXPECT_EQ(d.sdk_major, 99u);
    auto why = check_abi(host_abi_descriptor(), d, "bomb");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("SDK 99.0"), std::string::npos) << *why;
}

TEST(ReadAbiDescriptor, ALibraryWithoutTheSectionIsNotAModule) {
    EXPECT_NE(read_error(test_module("plain")).find("not a Membrane module: no .membrane_abi section"),
              std::string::npos)
        << read_error(test_module("plain"));
}

TEST(ReadAbiDescriptor, AnSdk11ModuleIsRefusedSayingWhichSdkBuiltIt) {
    const std::string why = read_error(test_module("legacy"));
    EXPECT_NE(why.find("built against Membrane SDK 1.1"), std::string::npos) << why;
    EXPECT_NE(why.find("rebuild the module against SDK " + std::to_string(kSdkMajor) + "." +
                       std::to_string(kSdkMinor)),
              std::string::npos)
        << why;
}

TEST(ReadAbiDescriptor, NonElfAndMissingFilesAreRefused) {
    const auto text = std::filesystem::path(MEMBRANE_TEST_MODULE_DIR) / "not-elf.so";
    {
        std::ofstream out(text);
        out << "#!/bin/sh\necho hello\n";
    }
    EXPECT_NE(read_error(text).find("not an ELF file"), std::string::npos) << read_error(text);
    std::filesystem::remove(text);
    EXPECT_NE(read_error(test_module("absent")), "");
}

TEST(ModuleName, AcceptsLowerCaseDigitsAndDashes) {
    EXPECT_TRUE(is_module_name("routing-vxlan"));
    EXPECT_TRUE(is_module_name("eni2"));
    EXPECT_FALSE(is_module_name(""));
    EXPECT_FALSE(is_module_name("../etc/passwd"));
    EXPECT_FALSE(is_module_name("Counter"));
    EXPECT_FALSE(is_module_name(std::string(49, 'a')));
}

}  // namespace
}  // namespace membrane::kernel
