// What ADD has made so far, undone in reverse order unless ADD completes:
// a failed ADD leaves no link, route, endpoint or lease behind.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace membrane::cni {

class UndoStack {
public:
    UndoStack() = default;
    UndoStack(const UndoStack&) = delete;
    UndoStack& operator=(const UndoStack&) = delete;
    ~UndoStack() {
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (...) {
                // Best effort: the original failure is what the runtime must see.
            }
        }
    }

    void push(std::function<void()> step) { steps_.push_back(std::move(step)); }
    void commit() { steps_.clear(); }

private:
    std::vector<std::function<void()>> steps_;
};

}  // namespace membrane::cni
