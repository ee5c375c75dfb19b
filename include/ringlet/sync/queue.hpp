// Queue<T>, PriorityQueue<T> (asyncio's, with Python 3.13's shutdown). An item put while a getter
// waits goes straight to it, a slot freed while a putter waits is reserved for it: nobody
// overtakes a woken waiter. One cancelled before it runs raises CancelledError; its item goes
// back to the front of the queue (or the next getter), its slot to the next putter.
// Loop thread only; the queue must outlive every operation on it. T need only be movable.
#pragma once

#include "ringlet/detail/wait_list.hpp"
#include "ringlet/errors.hpp"

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ringlet {
namespace detail {

/// FIFO storage of Queue: a growable ring buffer (a queue's steady state moves items in and
/// out of the same few slots, without allocating).
template <class T>
class FifoItems {
  public:
    FifoItems() noexcept = default;
    FifoItems(FifoItems&& other) noexcept
        : slots_(std::exchange(other.slots_, nullptr)), mask_(std::exchange(other.mask_, 0)),
          head_(std::exchange(other.head_, 0)), size_(std::exchange(other.size_, 0)) {}
    FifoItems& operator=(FifoItems&&) = delete;
    ~FifoItems() {
        clear();
        std::allocator<Slot>().deallocate(slots_, slots_ ? mask_ + 1 : 0);
    }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    void push(T item) {
        if (size_ == capacity())
            grow();
        std::construct_at(slot(head_ + size_), std::move(item));
        ++size_;
    }
    /// An item given back by a cancelled getter: it was first in line, so it is again.
    void push_front(T item) {
        if (size_ == capacity())
            grow();
        head_ = (head_ - 1) & mask_;
        std::construct_at(slot(head_), std::move(item));
        ++size_;
    }
    T pop() {
        T* first = slot(head_);
        T item = std::move(*first);
        std::destroy_at(first);
        head_ = (head_ + 1) & mask_;
        --size_;
        return item;
    }
    void clear() noexcept {
        for (; size_ > 0; --size_, head_ = (head_ + 1) & mask_)
            std::destroy_at(slot(head_));
    }

  private:
    struct Slot {
        alignas(T) std::byte bytes[sizeof(T)];
    };
    std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }
    T* slot(std::size_t i) noexcept {
        return std::launder(reinterpret_cast<T*>(&slots_[i & mask_]));
    }
    void grow() {
        std::size_t capacity = slots_ ? 2 * (mask_ + 1) : 4;
        Slot* bigger = std::allocator<Slot>().allocate(capacity);
        std::size_t moved = 0;
        try {
            for (; moved < size_; ++moved)
                std::construct_at(std::launder(reinterpret_cast<T*>(&bigger[moved])),
                                  std::move(*slot(head_ + moved)));
        } catch (...) {
            // A throwing move: the queue keeps its old storage (and the moved-from items).
            for (std::size_t i = 0; i < moved; ++i)
                std::destroy_at(std::launder(reinterpret_cast<T*>(&bigger[i])));
            std::allocator<Slot>().deallocate(bigger, capacity);
            throw;
        }
        for (std::size_t i = 0; i < size_; ++i)
            std::destroy_at(slot(head_ + i));
        std::allocator<Slot>().deallocate(slots_, this->capacity());
        slots_ = bigger;
        mask_ = capacity - 1;
        head_ = 0;
    }

    Slot* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t head_ = 0; // index of the first item (masked)
    std::size_t size_ = 0;
};

/// Heap storage of PriorityQueue: pop() returns the smallest item under Compare.
template <class T, class Compare>
class HeapItems {
  public:
    explicit HeapItems(Compare compare = Compare()) : compare_(std::move(compare)) {}
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    void push(T item) {
        heap_.push_back(std::move(item));
        std::push_heap(heap_.begin(), heap_.end(), greater());
    }
    /// Priority order puts a given-back item where it belongs anyway.
    void push_front(T item) { push(std::move(item)); }
    T pop() {
        std::pop_heap(heap_.begin(), heap_.end(), greater());
        T item = std::move(heap_.back());
        heap_.pop_back();
        return item;
    }
    void clear() noexcept { heap_.clear(); }

  private:
    // The std heap algorithms keep the largest element on top; reversing the order keeps the
    // smallest there.
    auto greater() {
        return [this](const T& a, const T& b) { return compare_(b, a); };
    }

    std::vector<T> heap_;
    Compare compare_;
};

/// The queue proper; Queue and PriorityQueue only choose the storage.
template <class T, class Items>
class BasicQueue {
  public:
    /// The awaiter of get(); it is the wait-list node, and holds the item handed to it.
    class Get final : public Waiter {
      public:
        explicit Get(BasicQueue& queue) noexcept : queue_(&queue) {}
        ~Get() {
            // The frame is destroyed after an item was handed to us but before we ran.
            if (item_)
                queue_->give_back(*this);
        }

        bool await_ready() const noexcept { return !queue_->items_.empty() || queue_->shut_down_; }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            queue_->getters_.push_back(*this);
            return true;
        }
        T await_resume() {
            if (cancelled_ && item_)
                queue_->give_back(*this); // handed an item, then cancelled before running
            leave();
            if (item_) {
                queue_->handed_.remove(*this);
                take_grant();
                T item = std::move(*item_);
                item_.reset();
                queue_->slot_freed(); // our item stopped counting against maxsize
                return item;
            }
            // Not suspended, or woken by shutdown(): an item if there is one, else QueueShutDown.
            return queue_->get_nowait();
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Queue get"; }

      private:
        friend class BasicQueue;
        BasicQueue* queue_;
        std::optional<T> item_;
    };

    /// The awaiter of put(); it is the wait-list node and holds the item until it is queued.
    class Put final : public Waiter {
      public:
        Put(BasicQueue& queue, T item) : queue_(&queue), item_(std::move(item)) {}
        ~Put() {
            // The frame is destroyed after a slot was reserved for us but before we ran.
            if (take_grant())
                queue_->release_slot();
        }

        bool await_ready() const noexcept { return queue_->shut_down_ || !queue_->full(); }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            queue_->putters_.push_back(*this);
            return true;
        }
        void await_resume() {
            if (take_grant()) {
                // Our reserved slot: free it, then take it below -- or pass it on if cancelled.
                --queue_->reserved_;
                if (cancelled_)
                    queue_->balance();
            }
            leave();
            queue_->put_nowait(std::move(item_)); // QueueShutDown if shut down meanwhile
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Queue put"; }

      private:
        BasicQueue* queue_;
        T item_;
    };

    /// The awaiter of join().
    class Join final : public Waiter {
      public:
        explicit Join(BasicQueue& queue) noexcept : queue_(&queue) {}
        bool await_ready() const noexcept { return queue_->unfinished_ == 0; }
        bool await_suspend(std::coroutine_handle<> caller) {
            if (!enter(caller))
                return false;
            queue_->joiners_.push_back(*this);
            return true;
        }
        void await_resume() {
            take_grant();
            leave();
        }
        void request_cancel(detail::TaskState&) noexcept override { cancel_wait(); }
        std::string what_awaited() const override { return "Queue join"; }

      private:
        BasicQueue* queue_;
    };

    /// Throws: std::invalid_argument if `maxsize` is negative (0 means unbounded).
    explicit BasicQueue(std::ptrdiff_t maxsize, Items items)
        : items_(std::move(items)), maxsize_(maxsize) {
        if (maxsize < 0)
            throw std::invalid_argument("Queue maxsize must be >= 0 (0 = unbounded), got " +
                                        std::to_string(maxsize));
    }
    BasicQueue(const BasicQueue&) = delete;
    BasicQueue& operator=(const BasicQueue&) = delete;

    /// `T item = co_await q.get();` removes the first item, waiting while the queue is empty.
    /// Throws: QueueShutDown once the queue is shut down and empty (at once after an immediate
    /// shutdown).
    /// Cancellation: raises CancelledError; an item already handed to the cancelled getter goes
    /// back to the front of the queue, or to the next getter. No item is lost.
    [[nodiscard]] Get get() noexcept { return Get(*this); }
    /// `co_await q.put(std::move(item));` appends the item, waiting while the queue is full.
    /// Throws: QueueShutDown if the queue is, or gets, shut down before the item is queued; the
    /// item is then destroyed with the awaiter.
    /// Cancellation: raises CancelledError and the item is not queued (a slot already reserved
    /// for the putter goes to the next putter).
    [[nodiscard]] Put put(T item) { return Put(*this, std::move(item)); }
    /// `co_await q.join();` waits until task_done() was called for every item put.
    /// Cancellation: raises CancelledError.
    [[nodiscard]] Join join() noexcept { return Join(*this); }

    /// Appends the item without waiting.
    /// Throws: QueueShutDown after shutdown(); QueueFull if full() (the item is then destroyed).
    void put_nowait(T item) {
        if (shut_down_)
            throw QueueShutDown();
        if (full())
            throw QueueFull();
        ++unfinished_;
        if (!getters_.empty()) {
            // Getters wait only while no item is queued: the first one takes it directly.
            hand(std::move(item));
            return;
        }
        items_.push(std::move(item));
    }
    /// Removes and returns the first item without waiting.
    /// Throws: QueueEmpty if empty(); QueueShutDown instead once the queue is shut down.
    T get_nowait() {
        if (items_.empty()) {
            if (shut_down_)
                throw QueueShutDown();
            throw QueueEmpty();
        }
        T item = items_.pop();
        slot_freed();
        return item;
    }
    /// Marks one item taken from the queue as processed; join() returns when none is left.
    /// Throws: std::logic_error if called more times than items were put.
    void task_done() {
        if (unfinished_ == 0)
            throw std::logic_error("Queue::task_done() called more times than items were put");
        if (--unfinished_ == 0)
            wake_joiners();
    }

    /// Items in the queue (an item handed to a getter that has yet to run is no longer in it).
    std::size_t qsize() const noexcept { return items_.size(); }
    bool empty() const noexcept { return items_.empty(); }
    /// True if put() would wait: maxsize items, counting items handed to getters that have yet
    /// to run and slots reserved for putters that have yet to run.
    bool full() const noexcept {
        return maxsize_ > 0 &&
               items_.size() + handed_.size() + reserved_ >= static_cast<std::size_t>(maxsize_);
    }
    std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
    bool is_shut_down() const noexcept { return shut_down_; }

    /// Python 3.13's Queue.shutdown: put() and put_nowait() raise QueueShutDown from now on,
    /// get() once the queue is empty; waiting putters and getters wake up (and raise, getters
    /// only when nothing is left). `immediate` also drops every queued item, including items
    /// handed to getters that have yet to run, counting each as done for join().
    void shutdown(bool immediate = false) {
        shut_down_ = true;
        if (immediate) {
            std::size_t dropped = items_.size();
            items_.clear();
            while (!handed_.empty()) {
                auto& getter = static_cast<Get&>(handed_.pop_front());
                getter.item_.reset();
                getter.take_grant();
                ++dropped;
            }
            unfinished_ -= std::min(unfinished_, dropped);
            if (unfinished_ == 0)
                wake_joiners();
        }
        while (!getters_.empty())
            getters_.pop_front().wake();
        while (!putters_.empty())
            putters_.pop_front().wake();
    }

  private:
    // Restores the invariants "getters wait only while no item is queued" and "putters wait
    // only while the queue is full", handing items and reserving slots in FIFO order.
    void balance() {
        while (!getters_.empty() && !items_.empty())
            hand(items_.pop());
        while (!putters_.empty() && !full()) {
            ++reserved_;
            putters_.pop_front().grant();
        }
    }

    // Gives `item` to the first waiting getter, which then carries it until it runs.
    void hand(T item) {
        auto& getter = static_cast<Get&>(getters_.pop_front());
        getter.item_.emplace(std::move(item));
        handed_.push_back(getter);
        getter.grant();
    }

    // An item left the queue's count against maxsize: a waiting putter may have its slot.
    void slot_freed() {
        if (!putters_.empty())
            balance();
    }

    // A getter that will not use its item puts it back first in line.
    void give_back(Get& getter) {
        handed_.remove(getter);
        getter.take_grant();
        items_.push_front(std::move(*getter.item_));
        getter.item_.reset();
        balance();
    }

    void release_slot() {
        --reserved_;
        balance();
    }

    void wake_joiners() noexcept {
        while (!joiners_.empty())
            joiners_.pop_front().grant();
    }

    Items items_;
    std::ptrdiff_t maxsize_;
    WaitList getters_;         // waiting for an item
    WaitList handed_;          // woken getters carrying an item, not yet run
    WaitList putters_;         // waiting for a free slot
    WaitList joiners_;         // waiting in join()
    std::size_t reserved_ = 0; // free slots promised to woken putters, not yet run
    std::size_t unfinished_ = 0;
    bool shut_down_ = false;
};

} // namespace detail

/// A FIFO queue between tasks (asyncio.Queue). maxsize 0 means unbounded.
template <class T>
class Queue : public detail::BasicQueue<T, detail::FifoItems<T>> {
  public:
    /// Throws: std::invalid_argument if `maxsize` is negative.
    explicit Queue(std::ptrdiff_t maxsize = 0)
        : detail::BasicQueue<T, detail::FifoItems<T>>(maxsize, detail::FifoItems<T>()) {}
};

/// A queue that returns its smallest item first under Compare (asyncio.PriorityQueue); items
/// that compare equal come out in no particular order.
template <class T, class Compare = std::less<T>>
class PriorityQueue : public detail::BasicQueue<T, detail::HeapItems<T, Compare>> {
  public:
    /// Throws: std::invalid_argument if `maxsize` is negative.
    explicit PriorityQueue(std::ptrdiff_t maxsize = 0, Compare compare = Compare())
        : detail::BasicQueue<T, detail::HeapItems<T, Compare>>(
              maxsize, detail::HeapItems<T, Compare>(std::move(compare))) {}
};

} // namespace ringlet
