// RemoteInbox: callbacks posted to a loop from other threads (call_soon_threadsafe).
// Shared (shared_ptr) between the loop and whoever may post later, e.g. a worker thread; after
// the loop closed, post() drops the callback and returns false, so late posters are harmless.
// Thread safety: post() and close() from any thread; take_all() on the loop thread.
#pragma once

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace ringlet::detail {

class RemoteInbox {
  public:
    /// Creates the eventfd the loop keeps a read armed on.
    RemoteInbox();
    ~RemoteInbox();
    RemoteInbox(const RemoteInbox&) = delete;
    RemoteInbox& operator=(const RemoteInbox&) = delete;

    /// Queues `callback` and wakes the loop. False (callback dropped) once closed.
    bool post(std::function<void()> callback);
    /// Takes every queued callback and re-enables wake-ups.
    std::vector<std::function<void()>> take_all();
    void close() noexcept;
    int eventfd() const noexcept { return eventfd_; }

  private:
    std::mutex mutex_;
    std::vector<std::function<void()>> callbacks_;
    bool wake_pending_ = false;
    bool closed_ = false;
    int eventfd_;
};

} // namespace ringlet::detail
