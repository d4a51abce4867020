#include "bus/event_bus.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace membrane::kernel {
namespace {

struct Ping {
    static constexpr std::string_view kTopic = "test.ping";
    int n = 0;
};
struct Pong {
    static constexpr std::string_view kTopic = "test.pong";
    std::string text;
};

class EventBusTest : public ::testing::Test {
protected:
    boost::asio::io_context io;
    EventBus bus{io};
    void drain() {
        io.restart();
        io.poll();
    }
};

TEST_F(EventBusTest, DeliversInPublishOrderOnTheLoop) {
    std::vector<int> seen;
    auto sub = bus.subscribe<Ping>("agent", [&](const Ping& p) { seen.push_back(p.n); });
    for (int i = 0; i < 100; ++i) bus.publish(Ping{i});
    EXPECT_TRUE(seen.empty()) << "delivery must wait for the loop";
    drain();
    ASSERT_EQ(seen.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
}

TEST_F(EventBusTest, RoutesByTopic) {
    int pings = 0;
    std::string pong;
    auto a = bus.subscribe<Ping>("agent", [&](const Ping&) { ++pings; });
    auto b = bus.subscribe<Pong>("agent", [&](const Pong& p) { pong = p.text; });
    bus.publish(Pong{"hello"});
    drain();
    EXPECT_EQ(pings, 0);
    EXPECT_EQ(pong, "hello");
}

TEST_F(EventBusTest, PublishFromAnotherThreadIsDeliveredOnTheLoopThread) {
    std::thread::id handler_thread;
    auto sub = bus.subscribe<Ping>("agent", [&](const Ping&) { handler_thread = std::this_thread::get_id(); });
    std::thread([&] { bus.publish(Ping{1}); }).join();
    drain();
    EXPECT_EQ(handler_thread, std::this_thread::get_id());
}

TEST_F(EventBusTest, ThrowingHandlerIsReportedWithItsOwnerAndOthersStillReceive) {
    std::vector<std::string> errors;
    bus.set_error_handler([&](const std::string& owner, std::string_view topic, const std::string& what) {
        errors.push_back(owner + "|" + std::string(topic) + "|" + what);
    });
    int before = 0;
    int after = 0;
    auto a = bus.subscribe<Ping>("first", [&](const Ping&) { ++before; });
    auto b = bus.subscribe<Ping>("bad-module", [&](const Ping&) { throw std::runtime_error("boom"); });
    auto c = bus.subscribe<Ping>("last", [&](const Ping&) { ++after; });
    bus.publish(Ping{});
    bus.publish(Ping{});
    drain();
    EXPECT_EQ(before, 2);
    EXPECT_EQ(after, 2);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0], "bad-module|test.ping|boom");
}

TEST_F(EventBusTest, SubscriptionEndsWhenDestroyed) {
    int count = 0;
    {
        auto sub = bus.subscribe<Ping>("agent", [&](const Ping&) { ++count; });
        EXPECT_EQ(bus.subscriber_count(Ping::kTopic), 1u);
    }
    EXPECT_EQ(bus.subscriber_count(Ping::kTopic), 0u);
    bus.publish(Ping{});
    drain();
    EXPECT_EQ(count, 0);
}

TEST_F(EventBusTest, HandlerMayCancelItselfAndALaterOneMidDelivery) {
    int first = 0;
    int second = 0;
    Subscription a;
    Subscription b;
    a = bus.subscribe<Ping>("agent", [&](const Ping&) {
        ++first;
        a.reset();  // destroys the running handler's registration
        b.reset();  // and a later one, which must not run
    });
    b = bus.subscribe<Ping>("agent", [&](const Ping&) { ++second; });
    bus.publish(Ping{});
    bus.publish(Ping{});
    drain();
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 0);
}

TEST_F(EventBusTest, SubscriptionOutlivingTheBusIsHarmless) {
    Subscription sub;
    {
        boost::asio::io_context other_io;
        EventBus other(other_io);
        sub = other.subscribe<Ping>("agent", [](const Ping&) {});
    }
    sub.reset();  // must not touch the destroyed bus
    SUCCEED();
}

TEST_F(EventBusTest, ModuleBusTagsOwnerAndCloseCancelsLeakedSubscriptions) {
    std::string failed_owner;
    bus.set_error_handler(
        [&](const std::string& owner, std::string_view, const std::string&) { failed_owner = owner; });
    int count = 0;
    ModuleBus module_bus(bus, "counter");
    membrane::Bus& sdk_bus = module_bus;
    auto kept = sdk_bus.subscribe<Ping>([&](const Ping& p) {
        ++count;
        if (p.n == 7) throw std::runtime_error("seven");
    });
    // A subscription the module "forgot": the handle is released on purpose.
    auto* leaked = new Subscription(sdk_bus.subscribe<Ping>([&](const Ping&) { ++count; }));
    sdk_bus.publish(Ping{7});
    drain();
    EXPECT_EQ(count, 2);
    EXPECT_EQ(failed_owner, "counter");

    module_bus.close();
    EXPECT_EQ(bus.subscriber_count(Ping::kTopic), 0u);
    bus.publish(Ping{1});
    drain();
    EXPECT_EQ(count, 2);
    kept.reset();  // after close: a no-op
    delete leaked;
}

}  // namespace
}  // namespace membrane::kernel
