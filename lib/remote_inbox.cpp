#include "ringlet/detail/remote_inbox.hpp"

#include <cerrno>
#include <cstdint>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace ringlet::detail {

RemoteInbox::RemoteInbox() : eventfd_(::eventfd(0, EFD_CLOEXEC)) {
    if (eventfd_ < 0)
        throw std::system_error(errno, std::generic_category(), "eventfd for the loop's wake-up");
}

RemoteInbox::~RemoteInbox() {
    ::close(eventfd_);
}

bool RemoteInbox::post(std::function<void()> callback) {
    bool wake;
    {
        std::lock_guard lock(mutex_);
        if (closed_)
            return false;
        callbacks_.push_back(std::move(callback));
        // One eventfd write per batch: later posters see wake_pending_ until the loop drains.
        wake = !std::exchange(wake_pending_, true);
    }
    if (wake) {
        std::uint64_t one = 1;
        // The eventfd lives as long as this object; EAGAIN (counter saturated) still wakes.
        [[maybe_unused]] auto n = ::write(eventfd_, &one, sizeof one);
    }
    return true;
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
