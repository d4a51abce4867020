#include "loop/serve_loop.hpp"

#include <exception>

namespace membrane::kernel {

void serve_until_stopped(boost::asio::io_context& io, spdlog::logger& log) {
    for (;;) {
        try {
            io.run();
            return;
        } catch (const std::exception& e) {
            log.error("an event handler threw, the agent keeps running: {}", e.what());
        } catch (...) {
            log.error("an event handler threw something that is not a std::exception, the agent keeps running");
        }
    }
}

}  // namespace membrane::kernel
