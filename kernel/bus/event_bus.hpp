// The kernel's event bus on the agent's Boost.Asio loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "membrane/bus.hpp"

namespace membrane::kernel {

class EventBus {
public:
    using RawHandler = std::function<void(const void*)>;
    // Called on the loop thread when a handler throws: (owner, topic, what).
    using ErrorHandler = std::function<void(const std::string&, std::string_view, const std::string&)>;

    explicit EventBus(boost::asio::io_context& io);
    ~EventBus();
    EventBus(const EventBus&) = delete;
    EventBus& operator=(const EventBus&) = delete;

    // `owner` names who subscribed ("agent" or a module) in error reports.
    Subscription subscribe(std::string owner, std::string_view topic, RawHandler handler);
    // Thread-safe. Delivery is posted to the loop, in publish order.
    void publish(std::string_view topic, std::shared_ptr<const void> event);
    void set_error_handler(ErrorHandler handler);

    template <class Event>
    Subscription subscribe(std::string owner, std::function<void(const Event&)> handler) {
        return subscribe(std::move(owner), Event::kTopic,
                         [h = std::move(handler)](const void* e) { h(*static_cast<const Event*>(e)); });
    }
    template <class Event>
    void publish(Event event) {
        auto owned = std::make_shared<const Event>(std::move(event));
        publish(Event::kTopic, std::shared_ptr<const void>(owned, owned.get()));
    }

    std::size_t subscriber_count(std::string_view topic) const;

private:
    struct State;
    void deliver(const std::string& topic, const std::shared_ptr<const void>& event);

    boost::asio::io_context& io_;
    std::shared_ptr<State> state_;
};

// The Bus a module sees: tags its subscriptions with the module's name and
// cancels every one of them on close(), even those the module leaked.
class ModuleBus final : public membrane::Bus {
public:
    ModuleBus(EventBus& bus, std::string owner);
    ~ModuleBus() override;
    void close();

protected:
    Subscription subscribe_topic(std::string_view topic, std::function<void(const void*)> handler) override;
    void publish_topic(std::string_view topic, std::shared_ptr<const void> event) override;

private:
    EventBus& bus_;
    std::string owner_;
    std::shared_ptr<std::map<std::uint64_t, Subscription>> live_;
    std::uint64_t next_ = 0;
};

}  // namespace membrane::kernel
