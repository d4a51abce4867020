#include <gtest/gtest.h>

#include "cni_args.hpp"
#include "cni_error.hpp"

namespace membrane::cni {
namespace {

TEST(CniArgs, EmptyIsNothing) {
    const CniArgs args = parse_cni_args("");
    EXPECT_FALSE(args.ignore_unknown);
    EXPECT_TRUE(args.labels().empty());
}

TEST(CniArgs, KubernetesPodArgsBecomeLabels) {
    const CniArgs args = parse_cni_args(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
    EXPECT_TRUE(args.ignore_unknown);
    const Labels expected = {{"k8s:io.kubernetes.pod.namespace", "shop"}, {"k8s:io.kubernetes.pod.name", "web-0"}};
    EXPECT_EQ(args.labels(), expected);
    EXPECT_EQ(args.infra_container_id, "abc");
    EXPECT_EQ(args.pod_uid, "u-1");
}

TEST(CniArgs, UnknownKeyIsAnErrorNamingIt) {
    try {
        parse_cni_args("K8S_POD_NAME=web;FOO=bar");
        FAIL() << "no error";
    } catch (const CniError& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidEnvironment);
        EXPECT_NE(e.msg().find("FOO"), std::string::npos) << e.msg();
        EXPECT_NE(e.msg().find("IgnoreUnknown"), std::string::npos) << e.msg();
    }
}

TEST(CniArgs, IgnoreUnknownAppliesWhereverItStands) {
    EXPECT_NO_THROW(parse_cni_args("FOO=bar;IgnoreUnknown=true"));
    EXPECT_NO_THROW(parse_cni_args("IgnoreUnknown=TRUE;FOO=bar"));
    EXPECT_THROW(parse_cni_args("IgnoreUnknown=0;FOO=bar"), CniError);
    EXPECT_THROW(parse_cni_args("IgnoreUnknown=false;FOO=bar"), CniError);
}

TEST(CniArgs, IgnoreUnknownMustBeABoolean) {
    EXPECT_THROW(parse_cni_args("IgnoreUnknown=yes"), CniError);
}

TEST(CniArgs, PairWithoutEqualsIsAnError) {
    EXPECT_THROW(parse_cni_args("IgnoreUnknown=1;justakey"), CniError);
    EXPECT_THROW(parse_cni_args("=value"), CniError);
}

TEST(CniArgs, EmptySegmentsAndValuesAreTolerated) {
    const CniArgs args = parse_cni_args("K8S_POD_NAME=a=b;;K8S_POD_NAMESPACE=;");
    EXPECT_EQ(args.pod_name, "a=b");  // the value runs from the first '='
    EXPECT_EQ(args.pod_namespace, "");
    EXPECT_EQ(args.labels().size(), 1u);
}

}  // namespace
}  // namespace membrane::cni
