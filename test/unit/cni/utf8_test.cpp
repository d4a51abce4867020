#include <gtest/gtest.h>

#include "cni_args.hpp"
#include "cni_environment.hpp"
#include "cni_error.hpp"
#include "network_config.hpp"
#include "utf8.hpp"

namespace membrane::cni {
namespace {

std::string message_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const CniError& e) {
        return e.msg();
    }
    ADD_FAILURE() << "no error";
    return "";
}

TEST(Utf8, AcceptsEveryWellFormedSequence) {
    EXPECT_EQ(first_invalid_utf8(""), std::nullopt);
    EXPECT_EQ(first_invalid_utf8("ascii \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd"), std::nullopt);
}

TEST(Utf8, FindsTheFirstIllFormedByte) {
    EXPECT_EQ(first_invalid_utf8("ab\xcb"), 2u);             // truncated sequence
    EXPECT_EQ(first_invalid_utf8("a\xcb" "b"), 1u);          // lead byte without continuation
    EXPECT_EQ(first_invalid_utf8("\x80"), 0u);               // lone continuation byte
    EXPECT_EQ(first_invalid_utf8("\xc0\xaf"), 0u);           // overlong '/'
    EXPECT_EQ(first_invalid_utf8("\xed\xa0\x80"), 0u);       // surrogate U+D800
    EXPECT_EQ(first_invalid_utf8("\xf4\x90\x80\x80"), 0u);   // above U+10FFFF
    EXPECT_EQ(invalid_utf8_problem("net\xcb"), "byte 0xcb at offset 3");
}

TEST(Utf8, ReplacementIsWellFormed) {
    EXPECT_EQ(replace_invalid_utf8("a\xcb" "b\xc3\xa9"), "a\xef\xbf\xbd" "b\xc3\xa9");
    EXPECT_EQ(first_invalid_utf8(replace_invalid_utf8("\xff\xfe\xed\xa0\x80")), std::nullopt);
}

// The crash fuzzing found: printing an error that echoed a byte 0xcb threw
// nlohmann's type_error 316 out of main (SIGABRT, no answer for the runtime).
TEST(Utf8, RuntimeTextNeverThrowsOnIllFormedBytes) {
    const CniError error(ErrorCode::DecodingFailure, "msg \xcb", "details \xc3");
    std::string text;
    ASSERT_NO_THROW(text = runtime_text(error_json(error, "1.0.0")));
    const auto parsed = nlohmann::json::parse(text);
    EXPECT_EQ(parsed["code"], 6);
    EXPECT_EQ(parsed["msg"], "msg \xef\xbf\xbd");
}

TEST(Utf8, NetworkConfigNamesTheFieldThatIsNotUtf8) {
    EXPECT_EQ(message_of([] { parse_network_config("{\"cniVersion\":\"1.0.0\",\"name\":\"n\xcb\",\"type\":\"m\"}"); }),
              "the network config on stdin is not valid UTF-8: 'name' holds byte 0xcb at offset 31");
    EXPECT_NE(message_of([] {
                  parse_network_config(
                      "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"m\",\"runtimeConfig\":{\"labels\":"
                      "[{\"key\":\"k\",\"value\":\"v\xff\"}]}}");
              }).find("'runtimeConfig.labels[0].value' holds byte 0xff"),
              std::string::npos);
}

TEST(Utf8, EnvironmentNamesTheVariableThatIsNotUtf8) {
    const std::map<std::string, std::string> vars = {{"CNI_COMMAND", "ADD"},   {"CNI_CONTAINERID", "abc"},
                                                     {"CNI_NETNS", "/ns\xcb"}, {"CNI_IFNAME", "eth0"},
                                                     {"CNI_PATH", "/opt/cni/bin"}};
    const EnvLookup lookup = [&](const char* name) -> std::optional<std::string> {
        const auto it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    EXPECT_EQ(message_of([&] { read_environment(lookup); }), "CNI_NETNS is not valid UTF-8: byte 0xcb at offset 3");
}

TEST(Utf8, CniArgsRefusesBytesThatAreNotUtf8) {
    EXPECT_EQ(message_of([] { parse_cni_args("K8S_POD_NAME=web\xcb"); }),
              "invalid CNI_ARGS: not valid UTF-8: byte 0xcb at offset 16");
}

// One byte of a multi-byte character is not a character: a message quoting
// it alone would not be UTF-8 either.
TEST(Utf8, ContainerIdProblemDescribesANonAsciiByteInHex) {
    EXPECT_EQ(container_id_problem("a\xc3\xa9"), "it contains byte 0xc3 (allowed: letters, digits, '_', '.', '-')");
}

}  // namespace
}  // namespace membrane::cni
