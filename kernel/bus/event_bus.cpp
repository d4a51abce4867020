#include "bus/event_bus.hpp"

#include <exception>
#include <vector>

#include <boost/asio/post.hpp>

namespace membrane::kernel {

// Subscribers live in shared state so that a Subscription outliving the bus
// (a module destroying its members late) cancels harmlessly.
struct EventBus::State {
    struct Subscriber {
        std::string owner;
        // shared_ptr: a handler may cancel itself (or another) mid-delivery;
        // the copy taken for delivery keeps the running one alive.
        std::shared_ptr<RawHandler> handler;
    };
    std::map<std::string, std::map<std::uint64_t, Subscriber>, std::less<>> topics;
    std::uint64_t next_id = 1;
    ErrorHandler on_error;
};

EventBus::EventBus(boost::asio::io_context& io) : io_(io), state_(std::make_shared<State>()) {}

EventBus::~EventBus() = default;

Subscription EventBus::subscribe(std::string owner, std::string_view topic, RawHandler handler) {
    const std::uint64_t id = state_->next_id++;
    state_->topics[std::string(topic)].emplace(
        id, State::Subscriber{std::move(owner), std::make_shared<RawHandler>(std::move(handler))});
    std::weak_ptr<State> weak = state_;
    return Subscription([weak, topic = std::string(topic), id] {
        if (auto state = weak.lock()) {
            auto it = state->topics.find(topic);
            if (it != state->topics.end()) it->second.erase(id);
        }
    });
}

void EventBus::publish(std::string_view topic, std::shared_ptr<const void> event) {
    // One post per event: Asio runs posted handlers in order on the single
    // loop thread, which is the publish-order guarantee.
    boost::asio::post(io_, [this, weak = std::weak_ptr<State>(state_), topic = std::string(topic),
                            event = std::move(event)] {
        if (weak.lock()) deliver(topic, event);
    });
}

void EventBus::deliver(const std::string& topic, const std::shared_ptr<const void>& event) {
    auto it = state_->topics.find(topic);
    if (it == state_->topics.end()) return;
    // Snapshot ids first: handlers may subscribe or cancel while we iterate.
    std::vector<std::uint64_t> ids;
    ids.reserve(it->second.size());
    for (const auto& [id, sub] : it->second) ids.push_back(id);
    for (std::uint64_t id : ids) {
        auto topic_it = state_->topics.find(topic);
        if (topic_it == state_->topics.end()) return;
        auto sub_it = topic_it->second.find(id);
        if (sub_it == topic_it->second.end()) continue;  // cancelled by an earlier handler
        const std::string owner = sub_it->second.owner;
        const std::shared_ptr<RawHandler> handler = sub_it->second.handler;
        try {
            (*handler)(event.get());
        } catch (const std::exception& e) {
            if (state_->on_error) state_->on_error(owner, topic, e.what());
        } catch (...) {
            if (state_->on_error) state_->on_error(owner, topic, "unknown exception");
        }
    }
}

void EventBus::set_error_handler(ErrorHandler handler) { state_->on_error = std::move(handler); }

std::size_t EventBus::subscriber_count(std::string_view topic) const {
    auto it = state_->topics.find(topic);
    return it == state_->topics.end() ? 0 : it->second.size();
}

ModuleBus::ModuleBus(EventBus& bus, std::string owner)
    : bus_(bus), owner_(std::move(owner)), live_(std::make_shared<std::map<std::uint64_t, Subscription>>()) {}

ModuleBus::~ModuleBus() { close(); }

void ModuleBus::close() {
    // Moving the map out first: each Subscription's cancel runs kernel code
    // only, and nothing here re-enters the map.
    auto live = std::move(*live_);
    live_->clear();
    live.clear();
}

Subscription ModuleBus::subscribe_topic(std::string_view topic, std::function<void(const void*)> handler) {
    const std::uint64_t id = next_++;
    live_->emplace(id, bus_.subscribe(owner_, topic, std::move(handler)));
    // The module's handle cancels the real subscription; after close() it is
    // a no-op because the entry is gone.
    std::weak_ptr<std::map<std::uint64_t, Subscription>> weak = live_;
    return Subscription([weak, id] {
        if (auto live = weak.lock()) live->erase(id);
    });
}

void ModuleBus::publish_topic(std::string_view topic, std::shared_ptr<const void> event) {
    bus_.publish(topic, std::move(event));
}

}  // namespace membrane::kernel
