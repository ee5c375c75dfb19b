// RecvChannel design (see the header for the model):
// - At most one request is armed: a multishot recv (buffer chosen by the kernel) or a
//   single-shot recv into a spare. Either one holds a reference to the channel until its last
//   completion (no CQE_F_MORE), so closing a stream never frees state the kernel still names.
// - A completion goes straight to the waiting recv_buffer() if there is one (the queue is then
//   empty: a waiter only waits on an empty queue), else to the queue. End of stream and errors
//   are sticky and come after every queued buffer, in order.
// - -ENOBUFS ends the multishot request: the pool keeps more buffers in its ring and grows if
//   it may (BufferPool::replenish), otherwise the next request is a single-shot one, so a
//   reader never stalls on an exhausted pool.
// - A cancel for back-pressure or close ends the request with -ECANCELED; nothing is lost: the
//   bytes stay in the socket until the next request.
#include "ringlet/detail/recv_channel.hpp"

#include "ringlet/detail/socket.hpp"
#include "ringlet/event_loop.hpp"

#include <cerrno>
#include <liburing.h>
#include <stdexcept>

namespace ringlet::detail {

// Defined first and inline: every received message goes through it, and inlined into
// RecvChannel::deliver() the buffer is built in place (a completion costs ~35 fewer
// instructions than a call passing a RecvBuffer by value). Only this file calls it.
inline void RecvBufferAwaiter::deliver(RecvBuffer&& buffer, int error) noexcept {
    buffer_ = std::move(buffer);
    error_ = error;
    delivered_ = true;
    task_->loop()->ready_queue().push(task_);
}

RecvChannel* RecvChannel::open(EventLoop& loop, int fd) {
    BufferPool& pool = loop.io().recv_pool();
    auto* channel = new RecvChannel(loop, pool, fd);
    try {
        channel->queue_.resize(max_queued);
    } catch (...) {
        channel->release();
        throw;
    }
    return channel;
}

RecvChannel::RecvChannel(EventLoop& loop, BufferPool& pool, int fd) noexcept
    : pool_(&pool), multishot_(pool.has_ring() ? Multishot::unknown : Multishot::unsupported),
      fd_(fd), loop_(&loop) {
    pool_->add_ref();
    op_.sink = this;
}

RecvChannel::~RecvChannel() {
    recycle_queued();
    pool_->release();
}

void RecvChannel::recycle_queued() noexcept {
    for (; count_ > 0; --count_, head_ = (head_ + 1) % capacity())
        pool_->recycle(queue_[head_].id);
}

void RecvChannel::close() noexcept {
    if (closed_)
        return;
    closed_ = true;
    recycle_queued();
    if (RecvBufferAwaiter* waiter = std::exchange(waiter_, nullptr))
        waiter->deliver(RecvBuffer(), ECANCELED);
    if (armed_) {
        try {
            loop_->io().cancel(op_);
        } catch (...) {
            // No SQE to be had: the request ends with the loop's close (cancel_all).
        }
    }
}

void RecvChannel::wait(RecvBufferAwaiter& waiter) {
    if (waiter_ != nullptr)
        throw std::logic_error("recv_buffer(): another task is already receiving from this "
                               "stream (one reader at a time)");
    if (!armed_)
        arm();
    waiter_ = &waiter;
}

void RecvChannel::withdraw(RecvBufferAwaiter& waiter) noexcept {
    if (waiter_ == &waiter)
        waiter_ = nullptr;
}

void RecvChannel::arm() {
    if (multishot_ != Multishot::unsupported && !single_shot_once_) {
        loop_->io().recv_multishot(op_, fd_);
        single_shot_request_ = false;
    } else {
        spare_ = pool_->take_spare();
        try {
            loop_->io().recv(op_, fd_, {pool_->data(spare_), pool_->buffer_size()}, 0);
        } catch (...) {
            pool_->recycle(spare_);
            throw;
        }
        single_shot_request_ = true;
        single_shot_once_ = false;
    }
    armed_ = true;
    add_ref(); // the request's
}

void RecvChannel::deliver(Item item) noexcept {
    if (closed_) {
        pool_->recycle(item.id);
    } else if (RecvBufferAwaiter* waiter = std::exchange(waiter_, nullptr)) {
        waiter->deliver(lend(item), 0);
    } else {
        if (count_ == capacity()) {
            try {
                std::vector<Item> bigger(std::size_t{capacity()} * 2);
                for (std::uint32_t i = 0; i < count_; ++i)
                    bigger[i] = queue_[(head_ + i) % capacity()];
                queue_ = std::move(bigger);
                head_ = 0;
            } catch (...) {
                // Out of memory: the bytes are dropped; fail the stream rather than reorder it.
                pool_->recycle(item.id);
                error_ = ENOMEM;
                return;
            }
        }
        queue_[(head_ + count_) % capacity()] = item;
        ++count_;
    }
}

void RecvChannel::deliver_end() noexcept {
    if (closed_ || count_ > 0)
        return; // the reader meets it after the queued buffers
    if (RecvBufferAwaiter* waiter = std::exchange(waiter_, nullptr))
        waiter->deliver(RecvBuffer(), error_);
}

void RecvChannel::on_completion(std::int32_t result, std::uint32_t flags) noexcept {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (single_shot_request_) {
        if (result > 0)
            deliver({spare_, static_cast<std::uint32_t>(result)});
        else
            pool_->recycle(spare_);
    } else if (flags & IORING_CQE_F_BUFFER) {
        const std::uint32_t id = flags >> IORING_CQE_BUFFER_SHIFT;
        pool_->filled(id);
        multishot_ = Multishot::supported;
        if (result > 0)
            deliver({id, static_cast<std::uint32_t>(result)});
        else
            pool_->recycle(id);
    }
    if (result == 0) {
        eof_ = true;
        deliver_end();
    } else if (result < 0) {
        const int error = -result;
        if (error == ENOBUFS) {
            if (!pool_->replenish())
                single_shot_once_ = true;
        } else if (error == EINVAL && multishot_ == Multishot::unknown && !single_shot_request_) {
            multishot_ = Multishot::unsupported; // kernel before 6.0
        } else if (error != ECANCELED && error_ == 0) {
            error_ = error;
            deliver_end();
        }
    }
    if (more) {
        if (count_ >= max_queued && !closed_) {
            try {
                loop_->io().cancel(op_); // the reader lags: let the socket buffer fill instead
            } catch (...) {
                // Keep receiving; the queue grows instead.
            }
        }
        return;
    }
    armed_ = false;
    if (waiter_ != nullptr && !closed_) {
        try {
            arm();
        } catch (...) {
            error_ = ENOMEM;
            deliver_end();
        }
    }
    release(); // the request's reference; may delete this
}

bool RecvBufferAwaiter::await_suspend(std::coroutine_handle<> caller) {
    if (!enter(caller))
        return false;
    try {
        channel_->wait(*this);
    } catch (...) {
        task_->clear_suspension();
        throw;
    }
    waiting_ = true;
    return true;
}

void RecvBufferAwaiter::throw_error() const {
    throw_socket_error(error_, "recv from", *peer_);
}

void RecvBufferAwaiter::request_cancel(TaskState&) noexcept {
    if (delivered_)
        return;
    channel_->withdraw(*this);
    waiting_ = false;
    mark_cancelled();
    task_->loop()->ready_queue().push(task_);
}

std::string RecvBufferAwaiter::what_awaited() const {
    return "recv_buffer from " + peer_->to_string();
}

} // namespace ringlet::detail
