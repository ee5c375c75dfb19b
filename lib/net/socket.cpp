// Socket descriptors and the shared stream-socket operations.
// Closing: a descriptor with no operation in flight is closed at once with close(2). With
// operations in flight, closing it would not stop them (each holds its own file reference), so
// the close goes through the ring: cancel_fd first, then a close queued behind it; the number is
// not reused before the cancel has run, and every operation still completes (-ECANCELED), so
// its awaiter resumes only once the kernel is done with its buffer.
#include "ringlet/detail/socket.hpp"

#include "ringlet/detail/stream_socket.hpp"
#include "ringlet/errors.hpp"
#include "ringlet/event_loop.hpp"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace ringlet::detail {

void throw_socket_error(int error, std::string_view operation, const Address& address) {
    std::string what(operation);
    what += ' ';
    if (address.family() == AddressFamily::unspecified)
        what += "(unknown address)";
    else
        what += address.to_string();
    throw std::system_error(error, std::generic_category(), what);
}

int open_socket(const Address& address, int type, std::string_view operation) {
    int domain;
    switch (address.family()) {
    case AddressFamily::ipv4:
        domain = AF_INET;
        break;
    case AddressFamily::ipv6:
        domain = AF_INET6;
        break;
    case AddressFamily::unix_domain:
        domain = AF_UNIX;
        break;
    default:
        throw std::invalid_argument(std::string(operation) + " an unspecified address");
    }
    int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0)
        throw_socket_error(errno, operation, address);
    return fd;
}

Address socket_name(int fd, bool peer) noexcept {
    Address out;
    socklen_t length = Address::native_capacity();
    int rc =
        peer ? ::getpeername(fd, out.native(), &length) : ::getsockname(fd, out.native(), &length);
    if (rc != 0)
        return Address();
    out.set_native_size(length);
    return out;
}

void SocketFd::close() noexcept {
    if (fd_ < 0)
        return;
    int fd = std::exchange(fd_, -1);
    if (in_flight_ > 0 && loop_ != nullptr && !loop_->is_closed()) {
        try {
            loop_->io().cancel_fd(fd);
            loop_->io().close_detached(fd);
            return;
        } catch (...) {
            // The ring refused the requests: shutting the socket down still wakes the
            // operations (they complete with 0 or an error) before the descriptor goes.
            ::shutdown(fd, SHUT_RDWR);
        }
    }
    ::close(fd);
}

void SocketSendAll::on_completion(std::int32_t result, std::uint32_t) noexcept {
    // Inside the loop's reaping: record and enqueue only (the rest is sent from run()).
    op_.result = result;
    if (result >= 0) {
        data_ = data_.subspan(static_cast<std::size_t>(result));
        if (!data_.empty() && !cancel_wanted_) {
            task_->loop()->ready_queue().push(static_cast<Runnable*>(this));
            return;
        }
    }
    finish();
}

void SocketSendAll::run() {
    if (cancel_wanted_)
        return finish();
    if (!socket_->is_open()) {
        op_.result = -ECANCELED; // closed between two sends, as if during one
        return finish();
    }
    try {
        task_->loop()->io().send(op_, socket_->get(), data_, 0);
    } catch (const std::system_error& e) {
        op_.result = -e.code().value(); // the ring refused the request
        finish();
    }
}

void SocketSendAll::request_cancel(TaskState&) noexcept {
    cancel_wanted_ = true;
    // In flight: the kernel's completion wakes the task. Between two sends: run() does.
    task_->loop()->io().cancel(op_);
}

void StreamSocket::open_channel() {
    if (fd_.is_open())
        channel_.adopt(RecvChannel::open(EventLoop::current(), fd_.get()));
}

void StreamSocket::throw_mixed_reads() const {
    throw std::logic_error("recv() on the stream to " + peer_.to_string() +
                           " after recv_buffer(): a stream reads one way only, or bytes queued "
                           "for recv_buffer() would be skipped");
}

Task<> StreamSocket::recv_exactly(std::span<std::byte> buffer) {
    std::size_t filled = 0;
    while (filled < buffer.size()) {
        std::size_t got = co_await recv(buffer.subspan(filled));
        if (got == 0)
            throw IncompleteReadError(
                std::vector<std::byte>(buffer.begin(), buffer.begin() + filled), buffer.size());
        filled += got;
    }
}

void StreamSocket::shutdown_write() {
    if (!fd_.is_open())
        throw_socket_error(EBADF, "shutdown to", peer_);
    if (::shutdown(fd_.get(), SHUT_WR) != 0)
        throw_socket_error(errno, "shutdown to", peer_);
}

Address StreamSocket::local_address() const {
    if (!fd_.is_open())
        throw_socket_error(EBADF, "getsockname of the stream to", peer_);
    Address out;
    socklen_t length = Address::native_capacity();
    if (::getsockname(fd_.get(), out.native(), &length) != 0)
        throw_socket_error(errno, "getsockname of the stream to", peer_);
    out.set_native_size(length);
    return out;
}

void StreamSocket::set_option(int level, int name, int value, std::string_view what) {
    int error = 0;
    if (!fd_.is_open())
        error = EBADF;
    else if (::setsockopt(fd_.get(), level, name, &value, sizeof(value)) != 0)
        error = errno;
    if (error != 0)
        throw_socket_error(error, std::string(what) + " on the stream to", peer_);
}

} // namespace ringlet::detail
