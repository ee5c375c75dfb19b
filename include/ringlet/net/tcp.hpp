// TcpStream and TcpListener: TCP over io_uring, asyncio's streams without the buffering
// (StreamReader adds that). Every system error becomes std::system_error naming the operation
// and the peer: "connect to 127.0.0.1:9: Connection refused".
// Loop thread only. Lifetime: a socket must not be moved or destroyed while one of its
// operations is in flight; close() it instead (they complete with operation_canceled).
#pragma once

#include "ringlet/detail/listener.hpp"
#include "ringlet/detail/stream_socket.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/task.hpp"

#include <cstdint>
#include <string>

namespace ringlet {

/// A connected TCP stream. Move-only; the destructor closes it. TCP_NODELAY is on (as in
/// asyncio); set_nodelay(false) brings Nagle's algorithm back.
/// recv, send, send_all, recv_exactly, shutdown_write, close, peer_address, local_address and
/// native_handle are described in detail::StreamSocket.
class TcpStream : public detail::StreamSocket {
  public:
    /// A closed stream.
    TcpStream() noexcept = default;
    /// Adopts connected socket `fd` whose peer is `peer` (used by connect and accept).
    TcpStream(detail::SocketFd fd, const Address& peer) noexcept;

    /// Connects to `address` (IPv4 or IPv6).
    /// Throws: std::invalid_argument if `address` is not an IP address; std::system_error
    /// "connect to <address>: ..." (e.g. Connection refused).
    /// Cancellation: CancelledError once the kernel confirmed; the socket is closed.
    static Task<TcpStream> connect(Address address);
    /// Resolves `host` (resolve()) and connects to the first address that accepts, trying them
    /// in order. Throws: std::system_error from the lookup, or the first connect failure if
    /// every address fails. Cancellation: as connect(address).
    static Task<TcpStream> connect(std::string host, std::uint16_t port);

    /// Switches Nagle's algorithm off (true) or on (false).
    /// Throws: std::system_error "setsockopt TCP_NODELAY on the stream to <peer>: ..." (EBADF if
    /// closed).
    void set_nodelay(bool on);
};

/// A listening TCP socket. Move-only; the destructor closes it.
class TcpListener {
  public:
    /// A closed listener.
    TcpListener() noexcept = default;
    TcpListener(TcpListener&&) noexcept = default;
    /// Closes this listener, then takes `other`'s socket.
    TcpListener& operator=(TcpListener&& other) noexcept {
        if (this != &other) {
            close();
            core_ = std::move(other.core_);
        }
        return *this;
    }
    ~TcpListener() { close(); }
    /// Binds `address` and listens; port 0 picks a free port (see local_address()).
    /// Throws: std::invalid_argument if `address` is not an IP address; std::system_error
    /// "bind to <address>: ..." (e.g. Address already in use).
    static TcpListener bind(const Address& address, const ListenOptions& options = {});

    /// Waits for the next connection: `TcpStream conn = co_await listener.accept();`.
    /// Connections are accepted by a multishot request where the kernel has it and queued in
    /// the listener until an accept takes them. Under EMFILE/ENFILE it logs one line through
    /// the loop's log() and retries every 100 ms until descriptors free up.
    /// Throws: std::system_error "accept on <local>: ..." (operation_canceled if the listener
    /// is closed meanwhile, EBADF if it was closed before).
    /// Lifetime: the listener must outlive the Task.
    /// Cancellation: CancelledError; a connection accepted meanwhile is delivered instead, or
    /// stays queued for the next accept (none is lost).
    Task<TcpStream> accept();

    /// The bound address, with the real port when bound to port 0 (still known after close()).
    /// Throws: std::logic_error for a default-constructed listener.
    const Address& local_address() const;
    /// Stops listening: accepts in progress complete with std::system_error(operation_canceled)
    /// (CancelledError if their task was cancelled), queued connections are closed.
    /// Idempotent; the destructor calls it.
    void close() noexcept;
    /// False once closed, moved from, or default-constructed.
    bool is_open() const noexcept { return core_ && !core_->closed(); }
    /// The listening descriptor (-1 once closed).
    int native_handle() const noexcept;

  private:
    explicit TcpListener(detail::ListenerRef core) noexcept : core_(std::move(core)) {}
    detail::ListenerRef core_;
};

} // namespace ringlet
