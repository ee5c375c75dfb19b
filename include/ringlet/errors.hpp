// ringlet's exception types, mirroring asyncio's.
// Thread safety: plain value types. System call failures are std::system_error, misuse is
// std::logic_error / std::invalid_argument; these cover the asyncio-specific outcomes.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace ringlet {

/// Raised inside a task at a suspension point after `cancel()`; the task may catch it,
/// clean up (with further co_awaits) and rethrow or return.
class CancelledError : public std::exception {
  public:
    const char* what() const noexcept override { return "task was cancelled"; }
};

/// Raised by `wait_for` when its timeout expires before the inner work produced a value.
class TimeoutError : public std::runtime_error {
  public:
    TimeoutError() : std::runtime_error("operation timed out") {}
    using std::runtime_error::runtime_error;
};

/// End of stream before the requested number of bytes; `partial` holds what did arrive.
class IncompleteReadError : public std::runtime_error {
  public:
    IncompleteReadError(std::vector<std::byte> partial, std::size_t expected)
        : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                             std::to_string(expected) + " expected bytes"),
          partial(std::move(partial)), expected(expected) {}
    std::vector<std::byte> partial;
    std::size_t expected;
};

/// The stream reader's limit was reached before the delimiter; `consumed` bytes stay buffered.
class LimitOverrunError : public std::runtime_error {
  public:
    LimitOverrunError(const std::string& message, std::size_t consumed)
        : std::runtime_error(message), consumed(consumed) {}
    std::size_t consumed;
};

/// `Queue::get_nowait` on an empty queue.
class QueueEmpty : public std::runtime_error {
  public:
    QueueEmpty() : std::runtime_error("queue is empty") {}
};

/// `Queue::put_nowait` on a full queue.
class QueueFull : public std::runtime_error {
  public:
    QueueFull() : std::runtime_error("queue is full") {}
};

/// Any queue operation after `Queue::shutdown()` (get: once the queue is drained).
class QueueShutDown : public std::runtime_error {
  public:
    QueueShutDown() : std::runtime_error("queue is shut down") {}
};

} // namespace ringlet
