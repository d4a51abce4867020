// The event bus as modules see it: typed events, delivered in publish order
// on the agent's loop thread, with RAII subscriptions.
//
// An event type is a plain struct with `static constexpr std::string_view
// kTopic`. The topic, not RTTI, routes events, so a module built with hidden
// visibility sees the same events as the kernel.
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <utility>

#include "membrane/api.hpp"

namespace membrane {

// Ends the subscription when destroyed (or on reset()). Move-only.
class Subscription {
public:
    Subscription() = default;
    explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
    Subscription(Subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
    Subscription& operator=(Subscription&& other) noexcept {
        if (this != &other) {
            reset();
            cancel_ = std::exchange(other.cancel_, nullptr);
        }
        return *this;
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    ~Subscription() { reset(); }

    void reset() noexcept {
        if (auto cancel = std::exchange(cancel_, nullptr)) cancel();
    }
    explicit operator bool() const { return static_cast<bool>(cancel_); }

private:
    std::function<void()> cancel_;
};

class MEMBRANE_SDK_API Bus {
public:
    virtual ~Bus() = default;

    // Handlers run on the loop thread. A handler that throws is logged with
    // its owner's name; delivery to the other handlers goes on.
    template <class Event>
    [[nodiscard]] Subscription subscribe(std::function<void(const Event&)> handler) {
        return subscribe_topic(Event::kTopic, [h = std::move(handler)](const void* event) {
            h(*static_cast<const Event*>(event));
        });
    }

    // Callable from any thread; delivery happens later, on the loop thread.
    template <class Event>
    void publish(Event event) {
        auto owned = std::make_shared<const Event>(std::move(event));
        publish_topic(Event::kTopic, std::shared_ptr<const void>(owned, owned.get()));
    }

protected:
    virtual Subscription subscribe_topic(std::string_view topic, std::function<void(const void*)> handler) = 0;
    virtual void publish_topic(std::string_view topic, std::shared_ptr<const void> event) = 0;
};

}  // namespace membrane
