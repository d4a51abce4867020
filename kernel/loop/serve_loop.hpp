// The agent's last fence around its event loop, apart from the agent so a
// test can drive it with a bare io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <spdlog/logger.h>

namespace membrane::kernel {

// Runs `io` until it is stopped or out of work. Code that runs modules' code
// contains what they throw; whatever still escapes a handler (a
// std::exception or anything else) is logged and the loop goes on serving
// (Asio allows run() to resume after a handler threw).
void serve_until_stopped(boost::asio::io_context& io, spdlog::logger& log);

}  // namespace membrane::kernel
