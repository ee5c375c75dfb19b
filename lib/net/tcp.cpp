// TcpStream and TcpListener: thin layers over StreamSocket and ListenerCore.
#include "ringlet/net/tcp.hpp"

#include "accept.hpp"

#include <exception>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdexcept>
#include <sys/socket.h>

namespace ringlet {
namespace {

bool is_ip(const Address& address) noexcept {
    return address.family() == AddressFamily::ipv4 || address.family() == AddressFamily::ipv6;
}

void require_ip(const Address& address, const char* operation) {
    if (!is_ip(address))
        throw std::invalid_argument(std::string(operation) + ": \"" + address.to_string() +
                                    "\" is not an IPv4 or IPv6 address");
}

} // namespace

TcpStream::TcpStream(detail::SocketFd fd, const Address& peer) noexcept
    : StreamSocket(std::move(fd), peer) {
    // asyncio's default; a failure (the peer already gone) shows at the next operation.
    int on = 1;
    if (fd_.is_open())
        ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

Task<TcpStream> TcpStream::connect(Address address) {
    require_ip(address, "TcpStream::connect");
    TcpStream stream(detail::SocketFd(detail::open_socket(address, SOCK_STREAM, "connect to")),
                     address);
    {
        // Scoped: the awaiter leaves the socket's books before the stream is moved out.
        detail::SocketConnect connecting(stream.fd_, stream.peer_);
        co_await connecting;
    }
    co_return stream;
}

Task<TcpStream> TcpStream::connect(std::string host, std::uint16_t port) {
    std::vector<Address> addresses = co_await resolve(host, port);
    std::exception_ptr first_error;
    for (const Address& address : addresses) {
        try {
            co_return co_await connect(address);
        } catch (const std::system_error&) {
            if (!first_error)
                first_error = std::current_exception();
        }
    }
    std::rethrow_exception(first_error);
}

void TcpStream::set_nodelay(bool on) {
    set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt TCP_NODELAY");
}

TcpListener TcpListener::bind(const Address& address, const ListenOptions& options) {
    require_ip(address, "TcpListener::bind");
    return TcpListener(
        detail::ListenerRef(detail::ListenerCore::open(address, SOCK_STREAM, options)));
}

Task<TcpStream> TcpListener::accept() {
    if (!core_)
        throw std::logic_error("accept on an empty ringlet::TcpListener");
    return detail::accept_stream<TcpStream>(detail::ListenerRef::share(*core_.get()));
}

const Address& TcpListener::local_address() const {
    if (!core_)
        throw std::logic_error("local_address of an empty ringlet::TcpListener");
    return core_->local_address();
}

void TcpListener::close() noexcept {
    if (core_)
        core_->close();
}

int TcpListener::native_handle() const noexcept {
    return core_ ? core_->socket().get() : -1;
}

} // namespace ringlet
