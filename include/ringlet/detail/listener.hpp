// ListenerCore: the accepting side that TcpListener and UnixListener share. It keeps one
// multishot accept armed where the kernel has it (5.19+) and queues the accepted descriptors in
// a per-listener backlog; waiting accepts take from it in FIFO order. With
// LoopOptions::multishot_accept false, or when the kernel answers the multishot request with
// -EINVAL, each accept runs its own single-shot request instead.
// Ownership: the core is heap-allocated and reference counted (its owner, each accept in
// progress, and an armed multishot request), so the multishot request's state outlives a
// listener destroyed while it is armed. Loop thread only. Design notes in lib/net/listener.cpp.
#pragma once

#include "ringlet/detail/socket.hpp"
#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/task.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/socket.h>
#include <vector>

namespace ringlet {

/// How TcpListener::bind / UnixListener::bind set the socket up.
struct ListenOptions {
    /// listen(2)'s backlog (the kernel caps it at net.core.somaxconn).
    int backlog = SOMAXCONN;
    /// SO_REUSEADDR: rebind a port whose old connections linger in TIME_WAIT (TCP only).
    bool reuse_address = true;
    /// SO_REUSEPORT: several sockets (one per loop thread) share the port (TCP only).
    bool reuse_port = false;
};

} // namespace ringlet

namespace ringlet::detail {

class AcceptAwaiter;

class ListenerCore final : public CompletionSink {
  public:
    /// Creates, binds and listens on a socket of `type` for `address`; returns a core with one
    /// reference (its owner's). Throws: std::system_error "bind to <address>: ..." and alike.
    static ListenerCore* open(const Address& address, int type, const ListenOptions& options);

    void add_ref() noexcept { ++refs_; }
    /// Drops a reference; the last one deletes the core.
    void release() noexcept;

    /// Stops listening: waiting accepts complete with -ECANCELED, queued descriptors are
    /// closed, requests in flight are cancelled. Idempotent.
    void close() noexcept;
    bool closed() const noexcept { return closed_; }
    const Address& local_address() const noexcept { return local_; }
    /// Accepted descriptors waiting in the backlog.
    std::size_t backlog_size() const noexcept { return count_; }

    // Used by AcceptAwaiter.
    bool take_ready(int& result) noexcept;              // a queued descriptor or a stored error
    void start(AcceptAwaiter& waiter, EventLoop& loop); // queue it (multishot), or single-shot
    void withdraw(AcceptAwaiter& waiter) noexcept;
    SocketFd& socket() noexcept { return fd_; }
    /// An accept failed with EMFILE/ENFILE/ENOBUFS/ENOMEM: logs one line per episode.
    void report_resource_error(EventLoop& loop, int error) noexcept;
    /// An accept succeeded: the next resource error is logged again.
    void accepted() noexcept { resource_error_logged_ = false; }

    void on_completion(std::int32_t result, std::uint32_t flags) noexcept override;

  private:
    enum class Multishot : std::uint8_t { unknown, supported, unsupported };

    ListenerCore(SocketFd fd, const Address& local) noexcept;
    ~ListenerCore();
    void arm(EventLoop& loop);
    void push_ready(int fd);
    int pop_ready() noexcept;
    AcceptAwaiter* pop_waiter() noexcept;
    void fail_waiters(int error) noexcept;

    SocketFd fd_;
    Address local_;
    IoOp multishot_;
    EventLoop* loop_ = nullptr;
    std::vector<int> ready_; // ring buffer of accepted descriptors
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    AcceptAwaiter* waiters_head_ = nullptr;
    AcceptAwaiter* waiters_tail_ = nullptr;
    int pending_error_ = 0; // a failure no accept was waiting for
    std::uint32_t refs_ = 1;
    Multishot multishot_state_ = Multishot::unknown;
    bool armed_ = false;
    bool closed_ = false;
    bool resource_error_logged_ = false;
};

/// One accept: takes a queued descriptor, waits for the multishot request to deliver one, or
/// runs a single-shot accept. Yields the descriptor or -errno. Not movable (named local only).
class AcceptAwaiter final : public SuspendPoint {
  public:
    explicit AcceptAwaiter(ListenerCore& core) noexcept : core_(&core) { core.add_ref(); }
    AcceptAwaiter(const AcceptAwaiter&) = delete;
    AcceptAwaiter& operator=(const AcceptAwaiter&) = delete;
    ~AcceptAwaiter();

    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> caller);
    /// The accepted descriptor (now the caller's) or -errno.
    /// Throws: CancelledError if the task was cancelled before a connection was delivered.
    int await_resume();
    void request_cancel(TaskState&) noexcept override;
    std::string what_awaited() const override;

    /// The peer, when the kernel reported it (single-shot accept); else unspecified.
    const Address& peer() const noexcept { return peer_; }

    // Used by ListenerCore.
    void deliver(int result) noexcept;       // queued mode: a descriptor or -errno
    void start_single_shot(EventLoop& loop); // needs task_ set (suspended)
    AcceptAwaiter* next_ = nullptr;
    AcceptAwaiter* prev_ = nullptr;

  private:
    enum class Mode : std::uint8_t { idle, queued, single_shot };

    ListenerCore* core_;
    IoOp op_;
    Address peer_;
    socklen_t peer_length_ = 0;
    int result_ = -1;
    Mode mode_ = Mode::idle;
    bool delivered_ = false; // queued mode: deliver() woke the task
    bool withdrawn_ = false; // queued mode: left the list on cancellation
    bool taken_ = false;     // await_resume handed the result over
};

/// A counted reference to a ListenerCore (the owner's, or an accept coroutine's).
class ListenerRef {
  public:
    ListenerRef() noexcept = default;
    explicit ListenerRef(ListenerCore* adopted) noexcept : core_(adopted) {}
    ListenerRef(ListenerRef&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    ListenerRef& operator=(ListenerRef&& other) noexcept {
        if (this != &other) {
            reset();
            core_ = std::exchange(other.core_, nullptr);
        }
        return *this;
    }
    ~ListenerRef() { reset(); }
    static ListenerRef share(ListenerCore& core) noexcept {
        core.add_ref();
        return ListenerRef(&core);
    }
    ListenerCore* get() const noexcept { return core_; }
    ListenerCore* operator->() const noexcept { return core_; }
    explicit operator bool() const noexcept { return core_ != nullptr; }
    void reset() noexcept {
        if (core_ != nullptr)
            std::exchange(core_, nullptr)->release();
    }

  private:
    ListenerCore* core_ = nullptr;
};

} // namespace ringlet::detail
