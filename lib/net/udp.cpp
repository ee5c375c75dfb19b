// UdpSocket: creation, bind and connect (plain system calls; they never block).
#include "ringlet/net/udp.hpp"

#include <cerrno>
#include <stdexcept>
#include <sys/socket.h>

namespace ringlet {
namespace {

void require_ip(const Address& address, const char* operation) {
    if (address.family() != AddressFamily::ipv4 && address.family() != AddressFamily::ipv6)
        throw std::invalid_argument(std::string(operation) + ": \"" + address.to_string() +
                                    "\" is not an IPv4 or IPv6 address");
}

void bind_to(const detail::SocketFd& fd, const Address& local) {
    if (::bind(fd.get(), local.native(), local.native_size()) != 0)
        detail::throw_socket_error(errno, "bind to", local);
}

} // namespace

UdpSocket UdpSocket::bind(const Address& local) {
    require_ip(local, "UdpSocket::bind");
    detail::SocketFd fd(detail::open_socket(local, SOCK_DGRAM, "bind to"));
    bind_to(fd, local);
    Address bound = detail::socket_name(fd.get(), false);
    return UdpSocket(std::move(fd), bound, Address());
}

UdpSocket UdpSocket::connect(const Address& remote, std::optional<Address> local) {
    require_ip(remote, "UdpSocket::connect");
    if (local)
        require_ip(*local, "UdpSocket::connect");
    detail::SocketFd fd(detail::open_socket(remote, SOCK_DGRAM, "connect to"));
    if (local)
        bind_to(fd, *local);
    if (::connect(fd.get(), remote.native(), remote.native_size()) != 0)
        detail::throw_socket_error(errno, "connect to", remote);
    Address bound = detail::socket_name(fd.get(), false);
    return UdpSocket(std::move(fd), bound, remote);
}

} // namespace ringlet
