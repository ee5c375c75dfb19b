// UnixStream and UnixListener: thin layers over StreamSocket and ListenerCore.
#include "ringlet/net/unix.hpp"

#include "accept.hpp"

#include <cerrno>
#include <stdexcept>
#include <sys/socket.h>
#include <system_error>

namespace ringlet {
namespace {

void require_unix(const Address& address, const char* operation) {
    if (address.family() != AddressFamily::unix_domain)
        throw std::invalid_argument(std::string(operation) + ": \"" + address.to_string() +
                                    "\" is not a Unix socket address");
}

} // namespace

Task<UnixStream> UnixStream::connect(Address address) {
    require_unix(address, "UnixStream::connect");
    UnixStream stream(detail::SocketFd(detail::open_socket(address, SOCK_STREAM, "connect to")),
                      address);
    {
        // Scoped: the awaiter leaves the socket's books before the stream is moved out.
        detail::SocketConnect connecting(stream.fd_, stream.peer_);
        co_await connecting;
    }
    co_return stream;
}

std::pair<UnixStream, UnixStream> UnixStream::pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        throw std::system_error(errno, std::generic_category(), "socketpair");
    detail::SocketFd a(fds[0]);
    detail::SocketFd b(fds[1]);
    Address unnamed = detail::socket_name(fds[0], false);
    return {UnixStream(std::move(a), unnamed), UnixStream(std::move(b), unnamed)};
}

UnixListener UnixListener::bind(const Address& address, const ListenOptions& options) {
    require_unix(address, "UnixListener::bind");
    return UnixListener(
        detail::ListenerRef(detail::ListenerCore::open(address, SOCK_STREAM, options)));
}

Task<UnixStream> UnixListener::accept() {
    if (!core_)
        throw std::logic_error("accept on an empty ringlet::UnixListener");
    return detail::accept_stream<UnixStream>(detail::ListenerRef::share(*core_.get()));
}

const Address& UnixListener::local_address() const {
    if (!core_)
        throw std::logic_error("local_address of an empty ringlet::UnixListener");
    return core_->local_address();
}

void UnixListener::close() noexcept {
    if (core_)
        core_->close();
}

int UnixListener::native_handle() const noexcept {
    return core_ ? core_->socket().get() : -1;
}

} // namespace ringlet
