// Socket building blocks shared by TCP, Unix and UDP sockets: SocketFd (owns a descriptor and
// closes it through the ring when operations are in flight) and the awaiters of socket
// operations (recv, send, send_all, connect, recvmsg/sendmsg for datagrams). Each awaiter holds
// its IoOp in the coroutine frame and formats an error message only when the operation fails.
// Loop thread only. Lifetime: a socket must not be moved or destroyed while one of its
// operations is in flight (close() it instead: the operations complete with operation_canceled).
#pragma once

#include "ringlet/detail/io_awaiter.hpp"
#include "ringlet/detail/runnable.hpp"
#include "ringlet/net/address.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/uio.h>
#include <utility>

namespace ringlet {
class EventLoop;
}

namespace ringlet::detail {

/// Throws std::system_error(error) whose message is "<operation> <address>", e.g.
/// "recv from 127.0.0.1:40112: Connection reset by peer".
[[noreturn]] void throw_socket_error(int error, std::string_view operation, const Address& address);

/// Creates a socket (SOCK_CLOEXEC added to `type`) for talking to or binding `address`.
/// Throws: std::invalid_argument if `address` is unspecified; std::system_error
/// "<operation> <address>: ..." if socket(2) fails.
int open_socket(const Address& address, int type, std::string_view operation);

/// The address the kernel gives for `fd` (getsockname, or getpeername when `peer`); an
/// unspecified Address if the call fails.
Address socket_name(int fd, bool peer) noexcept;

/// Owns a socket descriptor; move-only. Closing it with operations in flight cancels them first
/// (cancel_fd, then a close queued after it on the ring): they complete with -ECANCELED.
class SocketFd {
  public:
    SocketFd() noexcept = default;
    explicit SocketFd(int fd) noexcept : fd_(fd) {}
    SocketFd(SocketFd&& other) noexcept
        : fd_(std::exchange(other.fd_, -1)), in_flight_(std::exchange(other.in_flight_, 0)),
          loop_(other.loop_) {}
    SocketFd& operator=(SocketFd&& other) noexcept {
        if (this != &other) {
            close();
            fd_ = std::exchange(other.fd_, -1);
            in_flight_ = std::exchange(other.in_flight_, 0);
            loop_ = other.loop_;
        }
        return *this;
    }
    SocketFd(const SocketFd&) = delete;
    SocketFd& operator=(const SocketFd&) = delete;
    ~SocketFd() { close(); }

    int get() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    /// Closes the descriptor (idempotent); see the class comment for operations in flight.
    void close() noexcept;

    // Bookkeeping of the awaiters: an operation was submitted on `loop` / its awaiter is gone.
    void op_started(EventLoop& loop) noexcept {
        ++in_flight_;
        loop_ = &loop;
    }
    void op_finished() noexcept { --in_flight_; }
    std::uint32_t ops_in_flight() const noexcept { return in_flight_; }

  private:
    int fd_ = -1;
    std::uint32_t in_flight_ = 0; // awaiters that submitted an operation and still exist
    EventLoop* loop_ = nullptr;   // the loop of the last operation submitted
};

/// Base of the socket awaiters: refuses to start on a closed socket (EBADF), counts itself in
/// the socket's in-flight operations, and turns -errno into std::system_error.
/// Derived classes implement `void submit(IoBackend&, IoOp&, int fd)`.
template <class Derived>
class SocketAwaiter : public IoAwaiter<Derived> {
  public:
    /// `operation` ("recv from") and `address` name the failure; `address` is read only then.
    SocketAwaiter(SocketFd& socket, const Address& address, const char* operation) noexcept
        : socket_(&socket), address_(&address), operation_(operation) {}
    SocketAwaiter(SocketAwaiter&& other) noexcept
        : IoAwaiter<Derived>(other), socket_(other.socket_), address_(other.address_),
          operation_(other.operation_) {} // never moved once counted (awaited)
    SocketAwaiter& operator=(SocketAwaiter&&) = delete;
    ~SocketAwaiter() {
        if (counted_)
            socket_->op_finished();
    }

    bool await_ready() noexcept {
        if (socket_->is_open())
            return false;
        this->op_.result = -EBADF;
        return true;
    }
    void prepare(IoBackend& io, IoOp& op) {
        static_cast<Derived*>(this)->submit(io, op, socket_->get());
        socket_->op_started(*this->task_->loop());
        counted_ = true;
    }
    std::string what_awaited() const override {
        return std::string(operation_) + " " + address_->to_string();
    }

  protected:
    /// The result, or throws CancelledError / std::system_error.
    std::int32_t checked_result() {
        std::int32_t result = IoAwaiter<Derived>::await_resume();
        if (result < 0)
            throw_socket_error(-result, operation_, *address_);
        return result;
    }

    SocketFd* socket_;
    const Address* address_;
    const char* operation_;
    bool counted_ = false;
};

/// recv(2) through the ring; yields the byte count (0 at end of stream).
class SocketRecv final : public SocketAwaiter<SocketRecv> {
  public:
    SocketRecv(SocketFd& socket, const Address& peer, std::span<std::byte> buffer) noexcept
        : SocketAwaiter(socket, peer, "recv from"), buffer_(buffer) {}
    void submit(IoBackend& io, IoOp& op, int fd) { io.recv(op, fd, buffer_, 0); }
    std::size_t await_resume() { return static_cast<std::size_t>(checked_result()); }

  private:
    std::span<std::byte> buffer_;
};

/// send(2) through the ring (MSG_NOSIGNAL); yields the byte count, which may be short.
class SocketSend final : public SocketAwaiter<SocketSend> {
  public:
    SocketSend(SocketFd& socket, const Address& peer, std::span<const std::byte> data) noexcept
        : SocketAwaiter(socket, peer, "send to"), data_(data) {}
    void submit(IoBackend& io, IoOp& op, int fd) { io.send(op, fd, data_, 0); }
    std::size_t await_resume() { return static_cast<std::size_t>(checked_result()); }

  private:
    std::span<const std::byte> data_;
};

/// send_all(): every byte of `data`, in one awaiter. A short write is continued from the loop
/// (the awaiter queues itself as a Runnable and sends the rest) without resuming the task, so a
/// send that goes out whole costs what one send() costs: no coroutine frame, one wake-up.
/// Cancellation: stops after the send in flight; CancelledError unless everything went.
class SocketSendAll final : public SocketAwaiter<SocketSendAll>,
                            private CompletionSink,
                            private Runnable {
  public:
    SocketSendAll(SocketFd& socket, const Address& peer, std::span<const std::byte> data) noexcept
        : SocketAwaiter(socket, peer, "send to"), data_(data) {}

    bool await_ready() noexcept { return data_.empty() || SocketAwaiter::await_ready(); }
    void submit(IoBackend& io, IoOp& op, int fd) {
        op.sink = this;
        io.send(op, fd, data_, 0);
    }
    void request_cancel(TaskState&) noexcept override;
    /// Throws: CancelledError if cancelled before the last byte went; std::system_error "send
    /// to <peer>: ..." (operation_canceled if the stream was closed meanwhile).
    void await_resume() {
        if (task_ != nullptr) {
            task_->clear_suspension();
            if (cancelled_ || (cancel_wanted_ && !data_.empty())) {
                task_->clear_cancel_request();
                throw CancelledError();
            }
        }
        if (op_.result < 0)
            throw_socket_error(-op_.result, operation_, *address_);
    }

  private:
    void on_completion(std::int32_t result, std::uint32_t flags) noexcept override;
    void run() override; // sends the rest after a short write
    std::string describe() const override { return what_awaited(); }
    void finish() noexcept { task_->loop()->ready_queue().push(task_); }

    std::span<const std::byte> data_; // what is still to send
    bool cancel_wanted_ = false;
};

/// connect(2) through the ring to `peer`, which must stay valid until completion.
class SocketConnect final : public SocketAwaiter<SocketConnect> {
  public:
    SocketConnect(SocketFd& socket, const Address& peer) noexcept
        : SocketAwaiter(socket, peer, "connect to") {}
    void submit(IoBackend& io, IoOp& op, int fd) {
        io.connect(op, fd, address_->native(), address_->native_size());
    }
    void await_resume() { checked_result(); }
};

/// sendmsg(2) of one datagram to `destination` (copied into the awaiter).
class SocketSendTo final : public SocketAwaiter<SocketSendTo> {
  public:
    SocketSendTo(SocketFd& socket, std::span<const std::byte> data,
                 const Address& destination) noexcept
        : SocketAwaiter(socket, destination_, "send to"), destination_(destination), data_(data) {}
    SocketSendTo(SocketSendTo&& other) noexcept
        : SocketAwaiter(std::move(other)), destination_(other.destination_), data_(other.data_) {
        address_ = &destination_;
    }
    void submit(IoBackend& io, IoOp& op, int fd) {
        iov_.iov_base = const_cast<std::byte*>(data_.data());
        iov_.iov_len = data_.size();
        message_ = {};
        message_.msg_name = const_cast<sockaddr*>(destination_.native());
        message_.msg_namelen = destination_.native_size();
        message_.msg_iov = &iov_;
        message_.msg_iovlen = 1;
        io.sendmsg(op, fd, &message_, 0);
    }
    std::size_t await_resume() { return static_cast<std::size_t>(checked_result()); }

  private:
    Address destination_;
    std::span<const std::byte> data_;
    iovec iov_{};
    msghdr message_{};
};

} // namespace ringlet::detail

namespace ringlet {

/// What UdpSocket::recv_from yields: `auto [size, from] = co_await socket.recv_from(buffer);`
struct RecvFromResult {
    std::size_t size; ///< bytes stored in the buffer (a longer datagram is truncated)
    Address address;  ///< the sender
};

} // namespace ringlet

namespace ringlet::detail {

/// recvmsg(2) of one datagram; yields its size and sender. `local` names failures.
class SocketRecvFrom final : public SocketAwaiter<SocketRecvFrom> {
  public:
    SocketRecvFrom(SocketFd& socket, const Address& local, std::span<std::byte> buffer) noexcept
        : SocketAwaiter(socket, local, "recv_from on"), buffer_(buffer) {}
    void submit(IoBackend& io, IoOp& op, int fd) {
        iov_.iov_base = buffer_.data();
        iov_.iov_len = buffer_.size();
        message_ = {};
        message_.msg_name = from_.native();
        message_.msg_namelen = Address::native_capacity();
        message_.msg_iov = &iov_;
        message_.msg_iovlen = 1;
        io.recvmsg(op, fd, &message_, 0);
    }
    RecvFromResult await_resume() {
        auto size = static_cast<std::size_t>(checked_result());
        from_.set_native_size(message_.msg_namelen);
        return RecvFromResult{size, from_};
    }

  private:
    std::span<std::byte> buffer_;
    Address from_;
    iovec iov_{};
    msghdr message_{};
};

} // namespace ringlet::detail
