// The agent's last fence: whatever escapes a handler of its loop, even a
// throw of something that is not a std::exception, is logged and the loop
// goes on serving the handlers after it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include <boost/asio/post.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "loop/serve_loop.hpp"

namespace membrane::kernel::test {
namespace {

using ::testing::HasSubstr;

struct CapturedLog {
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
    spdlog::logger logger{"agent-test", sink};

    std::string text() const {
        std::string all;
        for (const auto& line : sink->last_formatted()) all += line;
        return all;
    }
};

TEST(ServeLoop, AHandlerThrowingSomethingNotAnExceptionDoesNotStopTheLoop) {
    boost::asio::io_context io;
    CapturedLog log;
    int served = 0;
    boost::asio::post(io, [] { throw 42; });
    boost::asio::post(io, [&] { ++served; });
    boost::asio::post(io, [] { throw std::runtime_error("boom"); });
    boost::asio::post(io, [&] { ++served; });

    EXPECT_NO_THROW(serve_until_stopped(io, log.logger));

    EXPECT_EQ(served, 2) << "the handlers after each throw still ran";
    EXPECT_THAT(log.text(), HasSubstr("threw something that is not a std::exception, the agent keeps running"));
    EXPECT_THAT(log.text(), HasSubstr("threw, the agent keeps running: boom"));
}

TEST(ServeLoop, ReturnsWhenStopped) {
    boost::asio::io_context io;
    CapturedLog log;
    bool after_stop = false;
    boost::asio::post(io, [&] { io.stop(); });
    boost::asio::post(io, [&] { after_stop = true; });
    serve_until_stopped(io, log.logger);
    EXPECT_FALSE(after_stop);
}

}  // namespace
}  // namespace membrane::kernel::test
