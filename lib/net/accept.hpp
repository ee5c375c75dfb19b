// accept_stream<Stream>(): the accept loop that TcpListener::accept and UnixListener::accept
// share (private to lib/). It awaits one AcceptAwaiter at a time; on descriptor exhaustion it
// logs one line per episode and sleeps 100 ms on the loop's timer heap before trying again,
// so a listener at its limit costs a few wake-ups per second, never a busy loop.
#pragma once

#include "ringlet/detail/listener.hpp"
#include "ringlet/detail/socket.hpp"
#include "ringlet/event_loop.hpp"
#include "ringlet/sleep.hpp"

#include <cerrno>
#include <chrono>

namespace ringlet::detail {

/// Test hook: the next multishot accept armed on this thread is submitted with an invalid
/// flag, so the kernel fails it with -EINVAL exactly as kernels before 5.19 do.
extern thread_local bool multishot_accept_einval_for_tests;

inline bool is_descriptor_exhaustion(int error) noexcept {
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

inline bool is_transient_accept_error(int error) noexcept {
    switch (error) {
    case ECONNABORTED:
    case EINTR:
    case EAGAIN:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case EPERM: // a firewall rule
        return true;
    default:
        return false;
    }
}

/// Stream is constructible from (SocketFd, const Address& peer).
template <class Stream>
Task<Stream> accept_stream(ListenerRef core) {
    for (;;) {
        int fd;
        Address peer;
        {
            AcceptAwaiter accept(*core.get());
            fd = co_await accept;
            if (fd >= 0)
                peer = accept.peer();
        }
        if (fd >= 0) {
            SocketFd socket(fd);
            if (peer.family() == AddressFamily::unspecified)
                peer = socket_name(fd, true); // multishot requests do not report the peer
            core->accepted();
            co_return Stream(std::move(socket), peer);
        }
        const int error = -fd;
        if (is_transient_accept_error(error))
            continue;
        if (is_descriptor_exhaustion(error)) {
            core->report_resource_error(EventLoop::current(), error);
            co_await sleep(std::chrono::milliseconds(100));
            if (core->closed())
                throw_socket_error(ECANCELED, "accept on", core->local_address());
            continue;
        }
        throw_socket_error(error, "accept on", core->local_address());
    }
}

} // namespace ringlet::detail
