// UdpSocket: datagrams over io_uring (send_to / recv_from, or send / recv once connected).
// Every system error becomes std::system_error naming the operation and the address.
// Loop thread only. Lifetime: a socket must not be moved or destroyed while one of its
// operations is in flight; close() it instead (they complete with operation_canceled).
#pragma once

#include "ringlet/detail/socket.hpp"
#include "ringlet/net/address.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace ringlet {

/// A UDP socket. Move-only; the destructor closes it.
class UdpSocket {
  public:
    /// A closed socket.
    UdpSocket() noexcept = default;
    /// A socket bound to `local` (port 0 picks a free port; see local_address()).
    /// Throws: std::invalid_argument if `local` is not an IP address; std::system_error
    /// "bind to <local>: ...".
    static UdpSocket bind(const Address& local);
    /// A socket connected to `remote` (send/recv talk to it, datagrams from elsewhere are
    /// dropped by the kernel), bound to `local` if given, else to an ephemeral port.
    /// Throws: std::invalid_argument if an address is not an IP address; std::system_error
    /// "connect to <remote>: ..." or "bind to <local>: ...".
    static UdpSocket connect(const Address& remote, std::optional<Address> local = std::nullopt);

    /// Sends one datagram to `destination`; yields the bytes sent.
    /// Throws: std::system_error "send to <destination>: ...".
    /// Lifetime: `data` must stay valid until the operation completes; cancellation waits for
    /// the kernel's completion (`destination` is copied).
    /// Cancellation: CancelledError once the kernel confirmed; a datagram that went is counted.
    [[nodiscard]] detail::SocketSendTo send_to(std::span<const std::byte> data,
                                               const Address& destination) noexcept {
        return detail::SocketSendTo(fd_, data, destination);
    }
    /// send_to() of the characters of `data`. Lifetime: as send_to().
    [[nodiscard]] detail::SocketSendTo send_to(std::string_view data,
                                               const Address& destination) noexcept {
        return send_to(std::as_bytes(std::span(data.data(), data.size())), destination);
    }
    /// Receives one datagram: `auto [size, from] = co_await socket.recv_from(buffer);`; a
    /// datagram longer than the buffer is truncated.
    /// Throws: std::system_error "recv_from on <local>: ...".
    /// Lifetime: `buffer` must stay valid until the operation completes; cancellation waits for
    /// the kernel's completion.
    /// Cancellation: CancelledError once the kernel confirmed; a datagram received meanwhile is
    /// returned instead (the cancel stays pending).
    [[nodiscard]] detail::SocketRecvFrom recv_from(std::span<std::byte> buffer) noexcept {
        return detail::SocketRecvFrom(fd_, local_, buffer);
    }
    /// Sends one datagram to the connected peer.
    /// Throws: std::system_error "send to <peer>: ..." (EDESTADDRREQ if not connected;
    /// ECONNREFUSED after an ICMP port unreachable). Lifetime and cancellation: as send_to().
    [[nodiscard]] detail::SocketSend send(std::span<const std::byte> data) noexcept {
        return detail::SocketSend(fd_, peer_, data);
    }
    /// send() of the characters of `data`. Lifetime: as send().
    [[nodiscard]] detail::SocketSend send(std::string_view data) noexcept {
        return send(std::as_bytes(std::span(data.data(), data.size())));
    }
    /// Receives one datagram from the connected peer; yields its size (truncated to the buffer).
    /// Throws: std::system_error "recv from <peer>: ..." (ECONNREFUSED after an ICMP port
    /// unreachable). Lifetime and cancellation: as recv_from().
    [[nodiscard]] detail::SocketRecv recv(std::span<std::byte> buffer) noexcept {
        return detail::SocketRecv(fd_, peer_, buffer);
    }

    /// The bound address (with the real port).
    const Address& local_address() const noexcept { return local_; }
    /// The connected peer; unspecified if not connected.
    const Address& peer_address() const noexcept { return peer_; }
    /// Closes the socket; operations in flight complete with operation_canceled first.
    /// Idempotent; the destructor calls it.
    void close() noexcept { fd_.close(); }
    /// False once closed, moved from, or default-constructed.
    bool is_open() const noexcept { return fd_.is_open(); }
    /// The socket descriptor (-1 once closed).
    int native_handle() const noexcept { return fd_.get(); }

  private:
    UdpSocket(detail::SocketFd fd, const Address& local, const Address& peer) noexcept
        : fd_(std::move(fd)), local_(local), peer_(peer) {}

    detail::SocketFd fd_;
    Address local_;
    Address peer_;
};

} // namespace ringlet
