// RetryTimer on real time, with short delays and generous bounds: when it
// fires, how the delay grows and starts over, and that stop() means never.
#include "retry_timer.hpp"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace membrane::service_lb {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `fired` reaches `count`.
bool wait_for_count(const std::atomic<int>& fired, int count, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (fired.load() < count) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

TEST(RetryTimer, FiresOnceAfterTheDelay) {
    std::atomic<int> fired{0};
    RetryTimer timer([&] { ++fired; }, 50ms, 1s);
    const auto armed = std::chrono::steady_clock::now();
    EXPECT_EQ(timer.arm(), 50ms);
    ASSERT_TRUE(wait_for_count(fired, 1));
    EXPECT_GE(std::chrono::steady_clock::now() - armed, 50ms);
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(fired.load(), 1) << "one arm, one call";
}

TEST(RetryTimer, ArmWhilePendingKeepsTheOnePending) {
    std::atomic<int> fired{0};
    RetryTimer timer([&] { ++fired; }, 1s, 10s);
    EXPECT_EQ(timer.arm(), 1s);
    EXPECT_EQ(timer.arm(), 1s);
    ASSERT_TRUE(wait_for_count(fired, 1));
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(fired.load(), 1);
}

TEST(RetryTimer, TheDelayDoublesUpToTheLongestAndStartsOverOnSuccess) {
    std::atomic<int> fired{0};
    RetryTimer timer([&] { ++fired; }, 10ms, 40ms);
    EXPECT_EQ(timer.arm(), 10ms);
    ASSERT_TRUE(wait_for_count(fired, 1));
    EXPECT_EQ(timer.arm(), 20ms);
    ASSERT_TRUE(wait_for_count(fired, 2));
    EXPECT_EQ(timer.arm(), 40ms);
    ASSERT_TRUE(wait_for_count(fired, 3));
    EXPECT_EQ(timer.arm(), 40ms);
    ASSERT_TRUE(wait_for_count(fired, 4));
    timer.succeeded();
    EXPECT_EQ(timer.arm(), 10ms);
}

TEST(RetryTimer, SuccessCancelsThePendingRetry) {
    std::atomic<int> fired{0};
    RetryTimer timer([&] { ++fired; }, 500ms, 1s);
    timer.arm();
    timer.succeeded();
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(fired.load(), 0);
}

TEST(RetryTimer, NeverFiresAfterStop) {
    std::atomic<int> fired{0};
    RetryTimer timer([&] { ++fired; }, 500ms, 1s);
    timer.arm();
    timer.stop();
    EXPECT_EQ(timer.arm(), 0ms) << "a stopped timer is not armed again";
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(fired.load(), 0);
}

}  // namespace
}  // namespace membrane::service_lb
