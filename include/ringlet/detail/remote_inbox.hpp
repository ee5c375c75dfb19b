// RemoteInbox: callbacks posted to a loop from other threads (call_soon_threadsafe).
// Shared (shared_ptr) between the loop and whoever may post later, e.g. a worker thread; after
// the loop closed, post() drops the callback and returns false, so late posters are harmless.
// Wake-ups: an eventfd write, or (from another loop) an IORING_OP_MSG_RING message to the loop's
// ring, whose descriptor the inbox keeps open (a dup) for as long as anyone holds the inbox.
// Thread safety: post(), enqueue(), wake_by_eventfd() and close() from any thread; take_all() on
// the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ringlet::detail {

class RemoteInbox {
  public:
    /// Creates the eventfd the loop keeps a read armed on. `ring_fd` is the loop's io_uring that
    /// other loops may send wake-up messages to (-1: none); the inbox keeps a duplicate of it, so
    /// a message sent after the loop closed never reaches a reused descriptor number.
    explicit RemoteInbox(int ring_fd = -1);
    ~RemoteInbox();
    RemoteInbox(const RemoteInbox&) = delete;
    RemoteInbox& operator=(const RemoteInbox&) = delete;

    /// Queues `callback` and wakes the loop through the eventfd. False (callback dropped) once
    /// closed.
    bool post(std::function<void()> callback);

    enum class Queued : std::uint8_t {
        dropped,      ///< the inbox is closed: the callback was destroyed
        wake_pending, ///< a wake-up is on its way already (one per batch)
        wake_needed,  ///< the caller must wake the loop (wake_by_eventfd or a MSG_RING message)
    };
    /// Queues `callback` without waking the loop; says whether the caller must wake it.
    Queued enqueue(std::function<void()> callback);
    /// Wakes the loop through its eventfd (harmless once closed: nobody reads it any more).
    void wake_by_eventfd() noexcept;

    /// Takes every queued callback and re-enables wake-ups.
    std::vector<std::function<void()>> take_all();
    void close() noexcept;
    int eventfd() const noexcept { return eventfd_; }
    /// The loop's ring for IORING_OP_MSG_RING wake-ups, or -1 if it takes eventfd wake-ups only.
    int ring_fd() const noexcept { return ring_fd_; }

  private:
    std::mutex mutex_;
    std::vector<std::function<void()>> callbacks_;
    bool wake_pending_ = false;
    bool closed_ = false;
    int eventfd_;
    int ring_fd_ = -1;
};

/// Posts `callback` to the loop behind `inbox` and wakes it: when called on a thread that runs
/// a loop able to send IORING_OP_MSG_RING and the target accepts it, by a message from that
/// loop's ring, otherwise through the eventfd. Defined in lib/event_loop.cpp. False (callback
/// dropped) once the inbox is closed. Thread safety: any thread.
bool post_threadsafe(const std::shared_ptr<RemoteInbox>& inbox, std::function<void()> callback);

} // namespace ringlet::detail
