// Who a trace's packet is from and for, by pod name or address.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "trace/trace_peer.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

TracePeerModel model() {
    TracePeerModel m;
    membrane::EndpointInfo web;
    web.id = 3;
    web.ipv4 = "10.1.1.2";
    web.identity = 256;
    web.labels = {{"k8s:io.kubernetes.pod.namespace", "shop"}, {"k8s:io.kubernetes.pod.name", "web-1"}, {"app", "web"}};
    m.endpoints = {web};
    m.remote_endpoints = {{.ipv4 = "10.1.2.3", .node = "node2", .pod = "shop/db-1", .identity = 257, .ports = {}}};
    m.nodes = {{"node1", "192.168.1.1", "10.1.1.0/24", true}, {"node2", "192.168.1.2", "10.1.2.0/24", false}};
    m.identities = {{257, {{"k8s:io.kubernetes.pod.namespace", "shop"}, {"k8s:app", "db"}}, false, 0}};
    return m;
}

TEST(TracePeerTest, PodsByNameOrAddressOnAnyNode) {
    const auto web = resolve_trace_peer("shop/web-1", model());
    EXPECT_EQ(web.kind, TracePeer::Kind::local_pod);
    EXPECT_EQ(web.ip, "10.1.1.2");
    EXPECT_EQ(web.identity, 256u);
    ASSERT_TRUE(web.endpoint.has_value());
    EXPECT_EQ(web.endpoint->id, 3u);
    EXPECT_EQ(resolve_trace_peer("10.1.1.2", model()).pod, "web-1");

    const auto db = resolve_trace_peer("shop/db-1", model());
    EXPECT_EQ(db.kind, TracePeer::Kind::remote_pod);
    EXPECT_EQ(db.node, "node2");
    EXPECT_EQ(db.namespace_, "shop");
    EXPECT_EQ(db.pod, "db-1");
    EXPECT_EQ(resolve_trace_peer("10.1.2.3", model()).identity, 257u);
}

TEST(TracePeerTest, APodByItsLabelsOnThisNodeFirst) {
    EXPECT_EQ(resolve_trace_peer("app=web", model()).pod, "web-1");
    const auto db = resolve_trace_peer("app=db,k8s:io.kubernetes.pod.namespace=shop", model());
    EXPECT_EQ(db.kind, TracePeer::Kind::remote_pod);  // "app" finds "k8s:app", from its identity
    EXPECT_EQ(db.ip, "10.1.2.3");
    try {
        resolve_trace_peer("app=cache", model());
        FAIL() << "labels no pod has were accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(e.what(), HasSubstr("no pod this node knows has the labels app=cache"));
    }
    for (const char* bad : {"app=web,", "=web", "app=web,tier"}) {
        EXPECT_THROW(resolve_trace_peer(bad, model()), std::invalid_argument) << bad;
    }
}

TEST(TracePeerTest, NodesAndTheWorldByAddress) {
    EXPECT_EQ(resolve_trace_peer("192.168.1.1", model()).kind, TracePeer::Kind::this_node);
    EXPECT_EQ(resolve_trace_peer("192.168.1.1", model()).identity, std::uint32_t{MBR_IDENTITY_HOST});
    const auto other = resolve_trace_peer("192.168.1.2", model());
    EXPECT_EQ(other.kind, TracePeer::Kind::other_node);
    EXPECT_EQ(other.identity, std::uint32_t{MBR_IDENTITY_REMOTE_NODE});
    EXPECT_EQ(other.node, "node2");
    const auto world = resolve_trace_peer("203.0.113.9", model());
    EXPECT_EQ(world.kind, TracePeer::Kind::world);
    EXPECT_EQ(world.identity, std::uint32_t{MBR_IDENTITY_WORLD});
}

TEST(TracePeerTest, WhatIsNeitherIsRefusedByName) {
    try {
        resolve_trace_peer("shop/nope", model());
        FAIL() << "an unknown pod was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(e.what(), HasSubstr("no pod shop/nope"));
    }
    for (const char* bad : {"", "web-1", "shop/", "/web", "a/b/c", "10.1.2"}) {
        EXPECT_THROW(resolve_trace_peer(bad, model()), std::invalid_argument) << bad;
    }
}

}  // namespace
}  // namespace membrane::kernel::test
