// StreamSocket: the connected stream socket that TcpStream and UnixStream share (recv, send,
// send_all, recv_exactly, shutdown_write, close, addresses). Move-only; the destructor closes.
// Loop thread only. Lifetime: a stream must not be moved or destroyed while one of its
// operations is in flight; close() it instead (the operations complete with operation_canceled).
#pragma once

#include "ringlet/detail/recv_channel.hpp"
#include "ringlet/detail/socket.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/task.hpp"

#include <cstddef>
#include <span>
#include <string_view>

namespace ringlet::detail {

class StreamSocket {
  public:
    /// A closed stream.
    StreamSocket() noexcept = default;
    /// Adopts connected socket `fd` whose peer is `peer`.
    StreamSocket(SocketFd fd, const Address& peer) noexcept : fd_(std::move(fd)), peer_(peer) {}
    StreamSocket(StreamSocket&&) noexcept = default;
    StreamSocket& operator=(StreamSocket&&) noexcept = default;

    /// Receives up to buffer.size() bytes: `std::size_t n = co_await stream.recv(buffer);`,
    /// 0 at end of stream (or for an empty buffer).
    /// Throws: std::system_error "recv from <peer>: ..." (operation_canceled if the stream is
    /// closed meanwhile, EBADF if it was closed before).
    /// Lifetime: `buffer` must stay valid until the operation completes; cancellation waits for
    /// the kernel's completion.
    /// Cancellation: CancelledError once the kernel confirmed; bytes received before the
    /// cancellation took effect are returned instead (the cancel stays pending).
    /// Throws: std::logic_error if the stream already reads through recv_buffer() (whose
    /// queued bytes would be skipped).
    [[nodiscard]] SocketRecv recv(std::span<std::byte> buffer) {
        if (channel_.get() != nullptr)
            throw_mixed_reads();
        return SocketRecv(fd_, peer_, buffer);
    }
    /// Receives into a buffer lent by the loop's pool: `RecvBuffer data = co_await
    /// stream.recv_buffer();`, empty at end of stream. A stream waiting here parks no buffer of
    /// its own, and a steady stream costs no request per message (one multishot recv stays
    /// armed). Once used, the stream reads only this way (recv() throws std::logic_error).
    /// Throws: std::system_error "recv from <peer>: ..." (operation_canceled if the stream is
    /// closed meanwhile, EBADF if it was closed before); std::logic_error if another task is
    /// already waiting in recv_buffer() on this stream.
    /// Cancellation: CancelledError at once; bytes that arrive later stay queued for the next
    /// recv_buffer() (none is lost).
    [[nodiscard]] RecvBufferAwaiter recv_buffer() {
        if (channel_.get() == nullptr)
            open_channel();
        return RecvBufferAwaiter(channel_.get(), peer_);
    }
    /// Sends some of `data` and yields how many bytes went (possibly fewer; see send_all()).
    /// Throws: std::system_error "send to <peer>: ..." (EPIPE/ECONNRESET after the peer left).
    /// Lifetime: `data` must stay valid until the operation completes; cancellation waits for
    /// the kernel's completion.
    /// Cancellation: as recv(); a send that went out is counted, never lost.
    [[nodiscard]] SocketSend send(std::span<const std::byte> data) noexcept {
        return SocketSend(fd_, peer_, data);
    }
    /// send() of the characters of `data`. Lifetime: as send().
    [[nodiscard]] SocketSend send(std::string_view data) noexcept {
        return send(std::as_bytes(std::span(data.data(), data.size())));
    }
    /// Sends all of `data`, continuing after short writes: `co_await stream.send_all(data);`
    /// Throws: std::system_error as send() (operation_canceled if the stream is closed
    /// meanwhile).
    /// Lifetime: `data` (and the stream) must stay valid until the await completes.
    /// Cancellation: CancelledError (unless the last byte went); an unknown prefix of `data`
    /// may have been sent.
    [[nodiscard]] SocketSendAll send_all(std::span<const std::byte> data) noexcept {
        return SocketSendAll(fd_, peer_, data);
    }
    /// send_all() of the characters of `data`. Lifetime: as send_all().
    [[nodiscard]] SocketSendAll send_all(std::string_view data) noexcept {
        return send_all(std::as_bytes(std::span(data.data(), data.size())));
    }
    /// Fills `buffer` completely.
    /// Throws: IncompleteReadError carrying the bytes that did arrive if the stream ends first;
    /// std::system_error as recv().
    /// Lifetime: `buffer` (and the stream) must stay valid until the Task completes.
    /// Cancellation: CancelledError; the bytes received so far are in `buffer` but not counted.
    Task<> recv_exactly(std::span<std::byte> buffer);

    /// Sends FIN (shutdown(SHUT_WR)); receiving still works.
    /// Throws: std::system_error "shutdown to <peer>: ..." (e.g. ENOTCONN), EBADF if closed.
    void shutdown_write();
    /// Closes the stream; operations in flight are cancelled first and complete with
    /// std::system_error(operation_canceled) (CancelledError if their own task was cancelled).
    /// Idempotent; the destructor calls it.
    void close() noexcept {
        channel_.reset();
        fd_.close();
    }
    /// False once closed, moved from, or default-constructed.
    bool is_open() const noexcept { return fd_.is_open(); }

    /// The peer this stream is connected to (cached when connected or accepted).
    const Address& peer_address() const noexcept { return peer_; }
    /// The local address (getsockname). Throws: std::system_error if the stream is closed.
    Address local_address() const;
    /// The socket descriptor (-1 once closed), for setsockopt and the like.
    int native_handle() const noexcept { return fd_.get(); }

  protected:
    /// setsockopt(level, name, value); throws std::system_error "<what> on <peer>".
    void set_option(int level, int name, int value, std::string_view what);

    // fd_ and channel_ first: every message reads both, so they share the frame's cache line
    // rather than sit on either side of the 136-byte address, which only errors read.
    SocketFd fd_;
    RecvChannelRef channel_; // created by the first recv_buffer(); destroyed (closed) before fd_
    Address peer_;

  private:
    [[noreturn]] void throw_mixed_reads() const;
    void open_channel(); // the first recv_buffer(); none on a closed stream
};

} // namespace ringlet::detail
