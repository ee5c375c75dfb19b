// UnixStream and UnixListener: stream sockets on Unix-domain addresses (a path or an abstract
// name), with the same operations and error messages as TCP. Removing a socket file (unlink)
// is the caller's business, before bind and after close. Loop thread only.
// Lifetime: a socket must not be moved or destroyed while one of its operations is in flight;
// close() it instead (they complete with operation_canceled).
#pragma once

#include "ringlet/detail/listener.hpp"
#include "ringlet/detail/stream_socket.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/task.hpp"

#include <utility>

namespace ringlet {

/// A connected Unix-domain stream. Move-only; the destructor closes it.
/// recv, send, send_all, recv_exactly, shutdown_write, close, peer_address, local_address and
/// native_handle are described in detail::StreamSocket.
class UnixStream : public detail::StreamSocket {
  public:
    /// A closed stream.
    UnixStream() noexcept = default;
    /// Adopts connected socket `fd` whose peer is `peer` (used by connect and accept).
    UnixStream(detail::SocketFd fd, const Address& peer) noexcept
        : StreamSocket(std::move(fd), peer) {}

    /// Connects to the Unix address `address` ("unix:/path" or "unix:@name").
    /// Throws: std::invalid_argument if `address` is not a Unix address; std::system_error
    /// "connect to <address>: ..." (e.g. No such file or directory, Connection refused).
    /// Cancellation: CancelledError once the kernel confirmed; the socket is closed.
    static Task<UnixStream> connect(Address address);
    /// Two connected streams (socketpair(2)); their peer addresses are unnamed ("unix:").
    /// Throws: std::system_error "socketpair: ...".
    static std::pair<UnixStream, UnixStream> pair();
};

/// A listening Unix-domain socket. Move-only; the destructor closes it (the socket file stays).
class UnixListener {
  public:
    /// A closed listener.
    UnixListener() noexcept = default;
    UnixListener(UnixListener&&) noexcept = default;
    /// Closes this listener, then takes `other`'s socket.
    UnixListener& operator=(UnixListener&& other) noexcept {
        if (this != &other) {
            close();
            core_ = std::move(other.core_);
        }
        return *this;
    }
    ~UnixListener() { close(); }
    /// Binds the Unix address `address` and listens (options.backlog; the reuse flags do not
    /// apply). Throws: std::invalid_argument if `address` is not a Unix address;
    /// std::system_error "bind to <address>: ..." (e.g. Address already in use: the file
    /// exists).
    static UnixListener bind(const Address& address, const ListenOptions& options = {});

    /// Waits for the next connection; as TcpListener::accept().
    /// Throws: std::system_error "accept on <local>: ...". Lifetime: the listener must outlive
    /// the Task. Cancellation: CancelledError; no connection is lost.
    Task<UnixStream> accept();

    /// The bound address (still known after close()).
    /// Throws: std::logic_error for a default-constructed listener.
    const Address& local_address() const;
    /// Stops listening; as TcpListener::close(). Idempotent; the destructor calls it.
    void close() noexcept;
    /// False once closed, moved from, or default-constructed.
    bool is_open() const noexcept { return core_ && !core_->closed(); }
    /// The listening descriptor (-1 once closed).
    int native_handle() const noexcept;

  private:
    explicit UnixListener(detail::ListenerRef core) noexcept : core_(std::move(core)) {}
    detail::ListenerRef core_;
};

} // namespace ringlet
