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
#include <sys/socket.h>
#include <sys/types.h>

namespace ringlet::detail {

class BufferPool;

/// submit_and_wait()'s "no time limit".
inline constexpr std::chrono::nanoseconds wait_forever = std::chrono::nanoseconds::max();

/// Receives every completion of a multishot operation (accept, recv). Like the ready queue
/// push it replaces, it must only record the result and enqueue: never resume anything.
class CompletionSink {
  public:
    virtual void on_completion(std::int32_t result, std::uint32_t flags) noexcept = 0;

  protected:
    ~CompletionSink() = default;
};

/// State of one in-flight operation; lives in its awaiter, inside the coroutine frame.
struct IoOp {
    Ready waiter;                   // enqueued on completion (single-shot operations)
    CompletionSink* sink = nullptr; // told of each completion instead (multishot operations)
    std::int32_t result = 0;        // the kernel's result: bytes, fd, or -errno
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
    virtual void recv(IoOp& op, int fd, std::span<std::byte> buffer, int flags) = 0;
    /// MSG_NOSIGNAL is added: a closed peer gives -EPIPE, never SIGPIPE.
    virtual void send(IoOp& op, int fd, std::span<const std::byte> buffer, int flags) = 0;
    virtual void recvmsg(IoOp& op, int fd, msghdr* message, int flags) = 0;
    virtual void sendmsg(IoOp& op, int fd, const msghdr* message, int flags) = 0;
    virtual void accept(IoOp& op, int fd, sockaddr* address, socklen_t* length, int flags) = 0;
    /// One request, one completion per accepted connection (CQE_F_MORE while it stays armed).
    /// Needs op.sink. Kernels before 5.19 complete it at once with -EINVAL.
    virtual void accept_multishot(IoOp& op, int fd, int flags) = 0;
    /// One request, one completion per receive into a buffer of recv_pool() (the buffer id in
    /// flags >> IORING_CQE_BUFFER_SHIFT), CQE_F_MORE while it stays armed. Needs op.sink and
    /// recv_pool().has_ring(). Kernels before 6.0 complete it at once with -EINVAL.
    virtual void recv_multishot(IoOp& op, int fd) = 0;
    /// The loop's receive buffers (created on first use).
    /// Throws: std::invalid_argument for bad LoopOptions::recv_buffer_size/count.
    virtual BufferPool& recv_pool() = 0;
    /// recv_pool() if it was created, else nullptr.
    virtual const BufferPool* recv_pool_if_created() const noexcept = 0;
    virtual void connect(IoOp& op, int fd, const sockaddr* address, socklen_t length) = 0;
    virtual void openat(IoOp& op, int dirfd, const char* path, int flags, mode_t mode) = 0;
    virtual void fsync(IoOp& op, int fd, bool data_only) = 0;
    virtual void close(IoOp& op, int fd) = 0;

    /// Asks the kernel to cancel `op`; its own completion (often -ECANCELED) still follows.
    virtual void cancel(IoOp& op) = 0;
    /// Asks the kernel to cancel every operation on `fd` (closing a socket with operations in
    /// flight); each one's own completion still follows.
    virtual void cancel_fd(int fd) = 0;
    /// Closes `fd` through the ring, after the requests queued before it (so a cancel_fd
    /// queued first reaches the right file: the number is not reused before). No completion.
    virtual void close_detached(int fd) = 0;
    /// Asks the kernel to cancel every request in flight (loop close: requests no task waits
    /// for, such as a listener's multishot accept); their completions still follow.
    virtual void cancel_all() = 0;

    /// Cross-loop wake-ups (call_soon_threadsafe between two loops): the descriptor other
    /// loops' backends send wake-up messages to, or -1 if this backend neither sends nor receives
    /// them (no IORING_OP_MSG_RING, or LoopOptions::cross_loop_wake is eventfd).
    virtual int wake_fd() const noexcept = 0;
    /// Sends a wake-up message to the backend behind `target_fd` (another loop's wake_fd());
    /// `op` completes with 0 or -errno (e.g. -EBADFD). Submitted at once, not with the next
    /// wait: this loop may not iterate again soon. Needs wake_fd() >= 0.
    virtual void send_wake(IoOp& op, int target_fd) = 0;
    /// Who is told of each wake-up message received (nullptr: nobody).
    virtual void set_wake_sink(CompletionSink* sink) noexcept = 0;

    /// Submits everything queued and waits up to `timeout` (zero: not at all; wait_forever: no
    /// limit) for at least one completion; returns how many completions it moved to the ready
    /// queue.
    virtual std::size_t submit_and_wait(std::chrono::nanoseconds timeout) = 0;

    /// Operations queued or in the kernel, not yet reaped.
    virtual std::size_t in_flight() const noexcept = 0;
    /// System calls into the kernel so far (LoopStats::kernel_entries).
    virtual std::uint64_t kernel_entries() const noexcept = 0;
    /// "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)" and the like.
    virtual const char* describe() const noexcept = 0;
};

} // namespace ringlet::detail
