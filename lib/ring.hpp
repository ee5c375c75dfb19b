// Ring: the io_uring implementation of detail::IoBackend (private to lib/).
// Set-up probes SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then a plain ring; the CQ is
// twice the SQ and the ring fd is registered where the kernel allows. Loop thread only
// (SINGLE_ISSUER binds the ring to the thread that created it).
#pragma once

#include "ringlet/detail/buffer_pool.hpp"
#include "ringlet/detail/io_backend.hpp"
#include "ringlet/detail/ready_queue.hpp"
#include "ringlet/event_loop.hpp"

#include <liburing.h>

namespace ringlet::detail {

/// Test hook: when non-zero, the next Ring set-up fails with this errno before calling the
/// kernel (to test the error messages for ENOSYS, EPERM and the like).
extern thread_local int ring_setup_fault_for_tests;

/// Whether the kernel supports IORING_OP_MSG_RING (probed once per process, then cached).
bool msg_ring_supported() noexcept;

class Ring final : public IoBackend {
  public:
    Ring(const LoopOptions& options, ReadyQueue& ready);
    ~Ring() override;

    void read(IoOp& op, int fd, std::span<std::byte> buffer, std::uint64_t offset) override;
    void write(IoOp& op, int fd, std::span<const std::byte> buffer, std::uint64_t offset) override;
    void recv(IoOp& op, int fd, std::span<std::byte> buffer, int flags) override;
    void send(IoOp& op, int fd, std::span<const std::byte> buffer, int flags) override;
    void recvmsg(IoOp& op, int fd, msghdr* message, int flags) override;
    void sendmsg(IoOp& op, int fd, const msghdr* message, int flags) override;
    void accept(IoOp& op, int fd, sockaddr* address, socklen_t* length, int flags) override;
    void accept_multishot(IoOp& op, int fd, int flags) override;
    void recv_multishot(IoOp& op, int fd) override;
    BufferPool& recv_pool() override;
    const BufferPool* recv_pool_if_created() const noexcept override { return recv_pool_; }
    void connect(IoOp& op, int fd, const sockaddr* address, socklen_t length) override;
    void openat(IoOp& op, int dirfd, const char* path, int flags, mode_t mode) override;
    void fsync(IoOp& op, int fd, bool data_only) override;
    void close(IoOp& op, int fd) override;
    void cancel(IoOp& op) override;
    void cancel_fd(int fd) override;
    void close_detached(int fd) override;
    void cancel_all() override;
    int wake_fd() const noexcept override;
    void send_wake(IoOp& op, int target_fd) override;
    void set_wake_sink(CompletionSink* sink) noexcept override { wake_sink_ = sink; }
    std::size_t submit_and_wait(std::chrono::nanoseconds timeout) override;
    std::size_t in_flight() const noexcept override { return in_flight_; }
    std::uint64_t kernel_entries() const noexcept override { return kernel_entries_; }
    const char* describe() const noexcept override { return description_; }

    /// A free SQE, submitting what is queued first if the SQ is full.
    io_uring_sqe* next_sqe();
    /// Queues `op` on `sqe` (user_data, bookkeeping).
    void attach(io_uring_sqe* sqe, IoOp& op) noexcept;

  private:
    std::size_t reap() noexcept;
    bool must_enter_for_completions() const noexcept;

    io_uring ring_{};
    ReadyQueue& ready_;
    std::size_t in_flight_ = 0;
    std::uint64_t kernel_entries_ = 0;
    bool defer_taskrun_ = false;
    bool taskrun_flag_ = false;  // the kernel flags IORING_SQ_TASKRUN (see submit_and_wait)
    bool wake_messages_ = false; // sends and receives IORING_OP_MSG_RING wake-ups
    CompletionSink* wake_sink_ = nullptr;
    BufferPool* recv_pool_ = nullptr; // created by the first recv_pool()
    std::uint32_t recv_buffer_size_;
    std::uint32_t recv_buffer_count_;
    bool multishot_recv_;
    const char* description_ = "io_uring";
};

} // namespace ringlet::detail
