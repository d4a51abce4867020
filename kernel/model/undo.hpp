// Steps to take back if an operation does not complete: run in reverse order
// on destruction unless commit() was called. A step that throws is skipped.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace membrane::kernel {

class Undo {
public:
    Undo() = default;
    ~Undo() {
        if (committed_) return;
        for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
            try {
                (*it)();
            } catch (...) {
                // Best effort: the original error is what the caller reports.
            }
        }
    }
    Undo(const Undo&) = delete;
    Undo& operator=(const Undo&) = delete;

    void add(std::function<void()> step) { steps_.push_back(std::move(step)); }
    void commit() { committed_ = true; }

private:
    std::vector<std::function<void()>> steps_;
    bool committed_ = false;
};

}  // namespace membrane::kernel
