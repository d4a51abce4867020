// The service as the agent runs it: an io_context, an EventBus, a fake
// AgentControl and EndpointControl, and the AgentService on a private bus. The loop runs on one
// thread of the test (the "agent thread"); the test body is the client.
#pragma once

#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "bus/event_bus.hpp"
#include "dbus/agent_service.hpp"
#include "fake_agent_control.hpp"
#include "fake_endpoint_control.hpp"
#include "private_dbus_daemon.hpp"
#include "run_process.hpp"

namespace membrane::test {

class ServiceHarness {
public:
    explicit ServiceHarness(const std::string& bus_address, kernel::CallerAccess access = kernel::CallerAccess{})
        : service_(std::make_unique<kernel::AgentService>(io_, kernel::connect_bus(bus_address), control_,
                                                          endpoints_, bus_, bus_address, std::move(access))),
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

// Base of the service test suites: one private dbus-daemon per suite, a fresh
// service (with fakes) per test, and the client-side helpers they share.
class ServiceTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { daemon_ = new PrivateDbusDaemon(); }
    static void TearDownTestSuite() {
        delete daemon_;
        daemon_ = nullptr;
    }
    static std::string address() { return daemon_->address(); }

    // busctl, the user's tool, on the suite's bus.
    static ProcessResult busctl(std::vector<std::string> args) {
        args.insert(args.begin(), {"busctl", "--address=" + address()});
        return run_process(args);
    }

    // The error of a failed proxy call (an empty name when it succeeded).
    template <class Call>
    static sdbus::Error error_of(Call&& call) {
        try {
            call();
        } catch (const sdbus::Error& e) {
            return e;
        }
        return sdbus::Error("");
    }

    static inline PrivateDbusDaemon* daemon_ = nullptr;
    ServiceHarness service_{address()};
};

}  // namespace membrane::test
