// IoAwaiter: the base of awaiters that run one kernel operation through the loop's IoBackend.
// The IoOp lives in the awaiter, inside the coroutine frame: no allocation per operation.
// Cancellation: request_cancel() asks the kernel to cancel and the task resumes only when the
// operation's own completion arrives, so the buffer stays valid until the kernel is done. If
// the operation completed anyway, its result is returned and CancelledError is raised at the
// next suspension point instead (no received byte is lost).
#pragma once

#include "ringlet/detail/io_backend.hpp"
#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/event_loop.hpp"

#include <cerrno>
#include <cstdint>

namespace ringlet::detail {

/// Derived classes implement `void prepare(IoBackend&, IoOp&)` and `what_awaited()`.
template <class Derived>
class IoAwaiter : public SuspendPoint {
  public:
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> caller) {
        if (!enter(caller))
            return false;
        op_.waiter = task_;
        static_cast<Derived*>(this)->prepare(task_->loop()->io(), op_);
        return true;
    }
    /// The kernel's result (-errno on failure). Throws CancelledError if cancelled in flight.
    std::int32_t await_resume() {
        if (task_ == nullptr)
            return op_.result;
        task_->clear_suspension();
        if (cancelled_ || (op_.result == -ECANCELED && task_->cancel_requested())) {
            task_->clear_cancel_request();
            throw CancelledError();
        }
        return op_.result;
    }
    void request_cancel(TaskState&) noexcept override {
        // Wake-up comes with the operation's own completion, not before.
        task_->loop()->io().cancel(op_);
    }

  protected:
    IoOp op_;
};

/// read(2) through the ring: `co_await detail::read_some(fd, buffer)`.
/// Lifetime: `buffer` must stay valid until the operation completes (cancellation included).
class ReadAwaiter final : public IoAwaiter<ReadAwaiter> {
  public:
    ReadAwaiter(int fd, std::span<std::byte> buffer, std::uint64_t offset) noexcept
        : fd_(fd), buffer_(buffer), offset_(offset) {}
    void prepare(IoBackend& io, IoOp& op) { io.read(op, fd_, buffer_, offset_); }
    std::string what_awaited() const override { return "read fd " + std::to_string(fd_); }

  private:
    int fd_;
    std::span<std::byte> buffer_;
    std::uint64_t offset_;
};

/// write(2) through the ring.
/// Lifetime: `buffer` must stay valid until the operation completes (cancellation included).
class WriteAwaiter final : public IoAwaiter<WriteAwaiter> {
  public:
    WriteAwaiter(int fd, std::span<const std::byte> buffer, std::uint64_t offset) noexcept
        : fd_(fd), buffer_(buffer), offset_(offset) {}
    void prepare(IoBackend& io, IoOp& op) { io.write(op, fd_, buffer_, offset_); }
    std::string what_awaited() const override { return "write fd " + std::to_string(fd_); }

  private:
    int fd_;
    std::span<const std::byte> buffer_;
    std::uint64_t offset_;
};

/// Offset -1: use (and advance) the file position, as read(2) does; pipes and sockets ignore it.
inline constexpr std::uint64_t current_position = static_cast<std::uint64_t>(-1);

inline ReadAwaiter read_some(int fd, std::span<std::byte> buffer,
                             std::uint64_t offset = current_position) noexcept {
    return ReadAwaiter(fd, buffer, offset);
}
inline WriteAwaiter write_some(int fd, std::span<const std::byte> buffer,
                               std::uint64_t offset = current_position) noexcept {
    return WriteAwaiter(fd, buffer, offset);
}

} // namespace ringlet::detail
