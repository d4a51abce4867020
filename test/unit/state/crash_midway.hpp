// A crash in the middle of a state write, for real: a child process runs
// `write` with the state-write crash point set to _exit() (no destructors, no
// cleanup, as a kill would leave it), after half of the temporary file is on
// disk. The caller then checks what a restarted agent would find.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "state/state_file.hpp"

namespace membrane::kernel::test {

inline constexpr int kCrashedMidway = 42;

// The child's exit code: kCrashedMidway when it died at the crash point,
// 1 when `write` finished, 2 when it threw, -1 when it did not exit.
inline int crash_midway(const std::function<void()>& write) {
    const pid_t child = ::fork();
    if (child == 0) {
        set_state_write_crash_point([] { ::_exit(kCrashedMidway); });
        try {
            write();
        } catch (...) {
            ::_exit(2);
        }
        ::_exit(1);
    }
    if (child < 0) {
        ADD_FAILURE() << "fork failed";
        return -1;
    }
    int status = 0;
    if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

}  // namespace membrane::kernel::test
