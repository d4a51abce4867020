// The service as the agent runs it: an io_context, an EventBus, a fake
// AgentControl and EndpointControl, and the AgentService on a private bus. The loop runs on one
// thread of the test (the "agent thread"); the test body is the client.
#pragma once

#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "bus/event_bus.hpp"
#include "dbus/agent_service.hpp"
#include "fake_agent_control.hpp"
#include "fake_endpoint_control.hpp"

namespace membrane::test {

class ServiceHarness {
public:
    explicit ServiceHarness(const std::string& bus_address)
        : service_(std::make_unique<kernel::AgentService>(io_, kernel::connect_bus(bus_address), control_,
                                                          endpoints_, bus_,
                                                          bus_address)),
          loop_([this] { io_.run(); }) {}

    ~ServiceHarness() {
        run_on_loop([this] { service_.reset(); });
        work_.reset();
        io_.stop();
        loop_.join();
    }
    ServiceHarness(const ServiceHarness&) = delete;
    ServiceHarness& operator=(const ServiceHarness&) = delete;

    // Runs `f` on the loop thread and waits; rethrows what it threw.
    template <class F>
    auto run_on_loop(F f) -> decltype(f()) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto done = task.get_future();
        boost::asio::post(io_, [&task] { task(); });
        return done.get();
    }

    kernel::AgentService& service() { return *service_; }
    FakeAgentControl& control() { return control_; }
    FakeEndpointControl& endpoints() { return endpoints_; }
    kernel::EventBus& bus() { return bus_; }
    std::thread::id loop_thread() const { return loop_.get_id(); }

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
    kernel::EventBus bus_{io_};
    FakeAgentControl control_;
    FakeEndpointControl endpoints_;
    std::unique_ptr<kernel::AgentService> service_;
    std::thread loop_;
};

}  // namespace membrane::test
