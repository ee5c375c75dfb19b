// RecvChannel: the receiving side of a stream that reads through recv_buffer(). It keeps one
// multishot recv armed on the socket (Linux 6.0+) whose completions land in buffers of the
// loop's BufferPool, and queues what arrives until a recv_buffer() takes it: a waiting stream
// parks no buffer, and a steady stream costs no SQE per message. A single-shot recv into a
// spare buffer replaces the multishot request on older kernels, with
// LoopOptions::multishot_recv false, and once after the pool ran dry.
// Back-pressure: with max_queued buffers waiting for the reader, the request is cancelled and
// re-armed only when the reader waits again, so TCP flow control still reaches the peer.
// Ownership: heap-allocated and reference counted (the stream, each waiting recv_buffer() and
// an armed request), so a request's completion never outlives its state. Loop thread only.
// Design notes in lib/net/recv_channel.cpp.
#pragma once

#include "ringlet/detail/buffer_pool.hpp"
#include "ringlet/detail/io_backend.hpp"
#include "ringlet/detail/suspend_point.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/recv_buffer.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ringlet {
class EventLoop;
}

namespace ringlet::detail {

class RecvBufferAwaiter;

class RecvChannel final : public CompletionSink {
  public:
    /// A channel for socket `fd` on `loop`, with one reference (the stream's).
    static RecvChannel* open(EventLoop& loop, int fd);

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0)
            delete this;
    }

    /// The stream closes: a waiting recv_buffer() gets -ECANCELED, queued buffers go back to
    /// the pool, an armed request is cancelled. Idempotent.
    void close() noexcept;
    bool closed() const noexcept { return closed_; }

    // Used by RecvBufferAwaiter.
    /// Something to hand over at once: a queued buffer, end of stream (empty `out`) or an error
    /// (`error` set).
    bool take_ready(RecvBuffer& out, int& error) noexcept {
        if (count_ > 0) {
            out = lend(queue_[head_]);
            head_ = (head_ + 1) % capacity();
            --count_;
            return true;
        }
        if (error_ != 0) {
            error = error_;
            return true;
        }
        return eof_; // end of stream: `out` stays empty
    }
    /// Registers the one waiter and arms a request if none is.
    /// Throws: std::logic_error if another task already waits; std::bad_alloc.
    void wait(RecvBufferAwaiter& waiter);
    void withdraw(RecvBufferAwaiter& waiter) noexcept;

    void on_completion(std::int32_t result, std::uint32_t flags) noexcept override;

  private:
    struct Item {
        std::uint32_t id;
        std::uint32_t size;
    };
    enum class Multishot : std::uint8_t { unknown, supported, unsupported };
    static constexpr std::size_t max_queued = 8;

    RecvChannel(EventLoop& loop, BufferPool& pool, int fd) noexcept;
    ~RecvChannel();
    void arm();
    void deliver(Item item) noexcept;
    void deliver_end() noexcept;
    void recycle_queued() noexcept; // gives every queued buffer back to the pool
    std::uint32_t capacity() const noexcept { return static_cast<std::uint32_t>(queue_.size()); }
    RecvBuffer lend(Item item) noexcept {
        pool_->add_ref();
        return RecvBuffer(pool_, item.id, pool_->data(item.id), item.size);
    }

    // Read for every message (completion, hand-over, the awaiter's checks): kept together, the
    // first 73 bytes, so two cache lines wherever the object starts (in declaration order they
    // were spread over its 128 bytes, often three lines).
    IoOp op_;
    RecvBufferAwaiter* waiter_ = nullptr;
    BufferPool* pool_;
    std::uint32_t count_ = 0; // queued buffers
    int error_ = 0;           // sticky: handed to every later receive
    std::uint32_t refs_ = 1;
    Multishot multishot_;
    bool single_shot_request_ = false;
    bool armed_ = false;
    bool eof_ = false;
    bool closed_ = false;
    // Read when bytes arrive before the reader waits, and when (re-)arming.
    bool single_shot_once_ = false; // the pool ran dry: the next request is single-shot
    std::uint32_t head_ = 0;
    std::uint32_t spare_ = 0; // the buffer of a single-shot request in flight
    int fd_;
    EventLoop* loop_;
    std::vector<Item> queue_; // ring buffer of received buffers
};

/// One recv_buffer(): takes a queued buffer or waits for the channel to deliver one.
/// Movable only before it is awaited (wait_for and gather take awaitables by value).
class RecvBufferAwaiter final : public SuspendPoint {
  public:
    RecvBufferAwaiter(RecvChannel* channel, const Address& peer) noexcept
        : channel_(channel), peer_(&peer) {
        if (channel_ != nullptr)
            channel_->add_ref();
    }
    RecvBufferAwaiter(RecvBufferAwaiter&& other) noexcept
        : channel_(std::exchange(other.channel_, nullptr)), peer_(other.peer_) {}
    RecvBufferAwaiter& operator=(RecvBufferAwaiter&&) = delete;
    ~RecvBufferAwaiter() {
        if (channel_ == nullptr)
            return;
        if (waiting_ && !delivered_)
            channel_->withdraw(*this); // the frame went while waiting (a task abandoned at close)
        channel_->release();
    }

    bool await_ready() noexcept {
        if (channel_ == nullptr || channel_->closed()) {
            error_ = EBADF;
            return true;
        }
        return channel_->take_ready(buffer_, error_);
    }
    bool await_suspend(std::coroutine_handle<> caller);
    /// Throws: CancelledError if cancelled before bytes arrived; std::system_error
    /// "recv from <peer>: ..." (operation_canceled if the stream was closed meanwhile, EBADF
    /// if before).
    RecvBuffer await_resume() {
        if (!delivered_)
            leave(); // CancelledError if the cancel came before the bytes did
        else
            task_->clear_suspension(); // bytes won: a pending cancel fires at the next suspension
        if (error_ != 0)
            throw_error();
        return std::move(buffer_);
    }
    void request_cancel(TaskState&) noexcept override;
    std::string what_awaited() const override;

    // Used by RecvChannel only: defined inline in lib/net/recv_channel.cpp.
    void deliver(RecvBuffer&& buffer, int error) noexcept;

  private:
    [[noreturn]] void throw_error() const;

    RecvChannel* channel_;
    const Address* peer_;
    RecvBuffer buffer_;
    int error_ = 0;
    bool waiting_ = false;
    bool delivered_ = false;
};

/// A counted reference to a RecvChannel (the stream's).
class RecvChannelRef {
  public:
    RecvChannelRef() noexcept = default;
    RecvChannelRef(RecvChannelRef&& other) noexcept
        : channel_(std::exchange(other.channel_, nullptr)) {}
    RecvChannelRef& operator=(RecvChannelRef&& other) noexcept {
        if (this != &other) {
            reset();
            channel_ = std::exchange(other.channel_, nullptr);
        }
        return *this;
    }
    ~RecvChannelRef() { reset(); }
    void adopt(RecvChannel* channel) noexcept {
        reset();
        channel_ = channel;
    }
    RecvChannel* get() const noexcept { return channel_; }
    /// Closes the channel and drops the reference.
    void reset() noexcept {
        if (channel_ != nullptr) {
            channel_->close();
            std::exchange(channel_, nullptr)->release();
        }
    }

  private:
    RecvChannel* channel_ = nullptr;
};

} // namespace ringlet::detail
