// Waiter and WaitList: the intrusive FIFO of tasks suspended on a synchronisation primitive
// (Event, Lock, Semaphore, Condition, Queue). A Waiter is the awaiter itself, so it lives in the
// suspended coroutine's frame and waiting allocates nothing; the primitive owns the list head.
// Lifetime: a Waiter unlinks itself when destroyed; a list orphans its waiters when destroyed.
// Loop thread only.
#pragma once

#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/event_loop.hpp"

#include <cassert>
#include <cstddef>
#include <utility>

namespace ringlet::detail {

class WaitList;

/// A task suspended on a primitive. States: linked in a list (waiting), then woken (pushed on
/// the ready queue, possibly carrying a grant: the lock, a permit, an item, a free slot), then
/// resumed. A primitive never resumes a waiter inline and never wakes it twice.
class Waiter : public SuspendPoint {
  public:
    Waiter() noexcept = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

    bool linked() const noexcept { return list_ != nullptr; }
    bool in(const WaitList& list) const noexcept { return list_ == &list; }
    bool woken() const noexcept { return woken_; }
    /// True while the waiter holds a grant it has not consumed yet.
    bool granted() const noexcept { return granted_; }

    /// Schedules the suspended task on its loop's ready queue (it stays in a list only if the
    /// primitive moved it to one on purpose, as Queue does with getters that carry an item).
    void wake() noexcept {
        assert(!woken_ && task_ != nullptr);
        woken_ = true;
        task_->loop()->ready_queue().push(task_);
    }
    /// Wakes the task with the resource it waited for.
    void grant() noexcept {
        granted_ = true;
        wake();
    }
    /// Consumes (or withdraws) the grant; returns whether there was one.
    bool take_grant() noexcept { return std::exchange(granted_, false); }

  protected:
    inline ~Waiter();

    /// The usual request_cancel(): a waiter still in its list leaves it and resumes at once with
    /// CancelledError. A woken one raises CancelledError when it runs; its await_resume must
    /// first hand any grant on, so the primitive ends up as if it had never waited.
    inline void cancel_wait() noexcept;

  private:
    friend class WaitList;
    Waiter* prev_ = nullptr;
    Waiter* next_ = nullptr;
    WaitList* list_ = nullptr;
    bool woken_ = false;
    bool granted_ = false;
};

/// An intrusive doubly linked FIFO of waiters: O(1) push, pop and removal from the middle.
class WaitList {
  public:
    WaitList() noexcept = default;
    WaitList(const WaitList&) = delete;
    WaitList& operator=(const WaitList&) = delete;
    /// A primitive destroyed while tasks still wait on it is a lifetime bug of its owner; the
    /// waiters are orphaned (not touched again through this list) so that their own destruction
    /// or cancellation stays safe.
    ~WaitList() {
        while (head_ != nullptr) {
            Waiter* w = std::exchange(head_, head_->next_);
            w->prev_ = w->next_ = nullptr;
            w->list_ = nullptr;
        }
    }

    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    Waiter& front() const noexcept {
        assert(head_ != nullptr);
        return *head_;
    }

    void push_back(Waiter& w) noexcept {
        assert(w.list_ == nullptr);
        w.list_ = this;
        w.prev_ = tail_;
        w.next_ = nullptr;
        if (tail_ != nullptr)
            tail_->next_ = &w;
        else
            head_ = &w;
        tail_ = &w;
        ++size_;
    }

    Waiter& pop_front() noexcept {
        Waiter& w = front();
        remove(w);
        return w;
    }

    void remove(Waiter& w) noexcept {
        assert(w.list_ == this);
        (w.prev_ != nullptr ? w.prev_->next_ : head_) = w.next_;
        (w.next_ != nullptr ? w.next_->prev_ : tail_) = w.prev_;
        w.prev_ = w.next_ = nullptr;
        w.list_ = nullptr;
        --size_;
    }

  private:
    Waiter* head_ = nullptr;
    Waiter* tail_ = nullptr;
    std::size_t size_ = 0;
};

// A frame destroyed while suspended (the loop closing on a task that ignored cancellation)
// must not leave a dangling node behind.
inline Waiter::~Waiter() {
    if (list_ != nullptr)
        list_->remove(*this);
}

inline void Waiter::cancel_wait() noexcept {
    if (woken_) {
        cancelled_ = true; // resolved in await_resume, when the task runs
        return;
    }
    if (list_ != nullptr)
        list_->remove(*this);
    mark_cancelled();
    wake();
}

} // namespace ringlet::detail
