// wait_signal: waits for one of a set of POSIX signals as a task, through a signalfd read on the
// loop's io_uring. While a wait is in progress the signals are blocked for the calling thread
// (pthread_sigmask), so their default action (terminating the process) does not run; when the
// last wait on this thread that needed a signal ends, the signal is unblocked again.
// Thread safety: loop thread only; the signal mask is per thread.
#pragma once

#include "ringlet/task.hpp"

#include <vector>

namespace ringlet {

/// Waits until one of `signals` (e.g. `{SIGINT, SIGTERM}`) is delivered to this thread or to
/// the process, and returns its number. The signals are blocked for this thread from the moment
/// the returned Task starts until it finishes; a signal that was already pending when it
/// started is returned at once. Other threads of the process must block the signals too, or
/// the kernel may deliver a process-directed signal to one of them instead (signalfd(2)).
/// Throws: std::invalid_argument at the call if `signals` is empty or names an invalid
/// signal, SIGKILL or SIGSTOP; std::system_error if signalfd(2) or the read fails.
/// Cancellation: cancellable; a signal the read had already taken is returned (and the
/// cancellation stays pending), so a received signal is never lost.
Task<int> wait_signal(std::vector<int> signals);

} // namespace ringlet
