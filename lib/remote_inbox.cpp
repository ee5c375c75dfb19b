#include "ringlet/detail/remote_inbox.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace ringlet::detail {

RemoteInbox::RemoteInbox(int ring_fd) : eventfd_(::eventfd(0, EFD_CLOEXEC)) {
    if (eventfd_ < 0)
        throw std::system_error(errno, std::generic_category(), "eventfd for the loop's wake-up");
    // Without the duplicate (EMFILE), other loops simply wake this one through the eventfd.
    if (ring_fd >= 0)
        ring_fd_ = ::fcntl(ring_fd, F_DUPFD_CLOEXEC, 0);
}

RemoteInbox::~RemoteInbox() {
    ::close(eventfd_);
    if (ring_fd_ >= 0)
        ::close(ring_fd_);
}

bool RemoteInbox::post(std::function<void()> callback) {
    Queued queued = enqueue(std::move(callback));
    if (queued == Queued::wake_needed)
        wake_by_eventfd();
    return queued != Queued::dropped;
}

RemoteInbox::Queued RemoteInbox::enqueue(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    if (closed_)
        return Queued::dropped; // `callback` is destroyed after the lock is released
    callbacks_.push_back(std::move(callback));
    // One wake-up per batch: later posters see wake_pending_ until the loop drains.
    return std::exchange(wake_pending_, true) ? Queued::wake_pending : Queued::wake_needed;
}

void RemoteInbox::wake_by_eventfd() noexcept {
    std::uint64_t one = 1;
    // The eventfd lives as long as this object; EAGAIN (counter saturated) still wakes, and
    // a closed loop no longer reads it: the write is then harmless.
    [[maybe_unused]] auto n = ::write(eventfd_, &one, sizeof one);
}

std::vector<std::function<void()>> RemoteInbox::take_all() {
    std::lock_guard lock(mutex_);
    wake_pending_ = false;
    return std::exchange(callbacks_, {});
}

void RemoteInbox::close() noexcept {
    std::vector<std::function<void()>> dropped;
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
        dropped.swap(callbacks_);
    }
    // `dropped` is destroyed here, outside the lock: captured objects may post again.
}

} // namespace ringlet::detail
