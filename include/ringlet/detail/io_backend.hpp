// The narrow seam between awaiters and the kernel: prepare an operation, cancel it, reap
// completions into the ready queue. lib/ring.cpp implements it on io_uring; a readiness-based
// backend (epoll performing the same operations) can implement it without touching awaiters.
// Lifetime: an IoOp (and the buffer it names) must stay valid until its completion has been
// reaped, even when cancelled: cancellation only asks the kernel, the completion still comes.
#pragma once

#include "ringlet/detail/runnable.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace ringlet::detail {

/// State of one in-flight operation; lives in its awaiter, inside the coroutine frame.
struct IoOp {
    Runnable* waiter = nullptr; // enqueued on completion
    std::int32_t result = 0;    // the kernel's result: bytes, fd, or -errno
    std::uint32_t flags = 0;
    bool in_flight = false;
    bool cancel_requested = false;
};

class IoBackend {
  public:
    virtual ~IoBackend() = default;

    // Operations. Each queues a request (submitted with the loop's next wait) whose completion
    // stores result/flags in `op` and pushes op.waiter onto the ready queue.
    virtual void read(IoOp& op, int fd, std::span<std::byte> buffer, std::uint64_t offset) = 0;
    virtual void write(IoOp& op, int fd, std::span<const std::byte> buffer,
                       std::uint64_t offset) = 0;
    /// Asks the kernel to cancel `op`; its own completion (often -ECANCELED) still follows.
    virtual void cancel(IoOp& op) = 0;

    /// Submits everything queued and waits up to `timeout` (nullopt: no limit) for at least one
    /// completion; returns how many completions it moved to the ready queue.
    virtual std::size_t submit_and_wait(std::optional<std::chrono::nanoseconds> timeout) = 0;

    /// Operations queued or in the kernel, not yet reaped.
    virtual std::size_t in_flight() const noexcept = 0;
    /// "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)" and the like.
    virtual const char* describe() const noexcept = 0;
};

} // namespace ringlet::detail
