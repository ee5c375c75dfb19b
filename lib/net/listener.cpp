// ListenerCore and AcceptAwaiter design.
// Multishot mode (the default): the first accept arms one IORING_OP_ACCEPT multishot request
// whose completions go to ListenerCore::on_completion (the CompletionSink). Each accepted
// descriptor goes to the first waiting AcceptAwaiter (FIFO list, woken through the ready queue)
// or, if none waits, into the ready_ ring buffer that later accepts take from without
// suspending. With more than max_ready queued and nobody waiting, the request is cancelled
// (back-pressure: the kernel's listen queue holds further connections) and the next accept that
// finds the buffer empty arms it again. The request also ends on an error: -EINVAL on its
// first completion means the kernel has no multishot accept (before 5.19) and every waiter
// switches to a single-shot request; other errors (EMFILE...) go to every waiter, or are kept
// for the next accept; accept_stream() then backs off. Single-shot mode: each AcceptAwaiter
// runs its own IORING_OP_ACCEPT with its IoOp, and cancellation follows IoAwaiter's rules.
// Who touches what: everything runs on the loop thread. refs_ counts the owner (TcpListener or
// UnixListener), each AcceptAwaiter and accept_stream frame, and an armed request, so that the
// IoOp multishot_ lives until its final completion even if the listener is gone.
// Closing: waiters queued in the list get -ECANCELED at once; requests in the kernel are
// cancelled through SocketFd::close (cancel_fd) and complete with -ECANCELED; descriptors
// delivered after the close are closed on arrival, so none leaks.
#include "ringlet/detail/listener.hpp"

#include "accept.hpp"
#include "ringlet/event_loop.hpp"

#include <cassert>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdexcept>
#include <unistd.h>

namespace ringlet::detail {
namespace {

/// Queued descriptors beyond which an idle listener stops its multishot request.
constexpr std::size_t max_ready = 128;

void set_flag(int fd, int level, int name, const Address& address) {
    int on = 1;
    if (::setsockopt(fd, level, name, &on, sizeof(on)) != 0) {
        int error = errno;
        ::close(fd);
        throw_socket_error(error, "bind to", address);
    }
}

} // namespace

ListenerCore* ListenerCore::open(const Address& address, int type, const ListenOptions& options) {
    int fd = open_socket(address, type, "bind to");
    bool ip = address.family() == AddressFamily::ipv4 || address.family() == AddressFamily::ipv6;
    if (ip && options.reuse_address)
        set_flag(fd, SOL_SOCKET, SO_REUSEADDR, address);
    if (ip && options.reuse_port)
        set_flag(fd, SOL_SOCKET, SO_REUSEPORT, address);
    if (::bind(fd, address.native(), address.native_size()) != 0) {
        int error = errno;
        ::close(fd);
        throw_socket_error(error, "bind to", address);
    }
    if (::listen(fd, options.backlog) != 0) {
        int error = errno;
        ::close(fd);
        throw_socket_error(error, "listen on", address);
    }
    Address local = socket_name(fd, false);
    if (local.family() == AddressFamily::unspecified)
        local = address;
    return new ListenerCore(SocketFd(fd), local);
}

ListenerCore::ListenerCore(SocketFd fd, const Address& local) noexcept
    : fd_(std::move(fd)), local_(local) {
    multishot_.sink = this;
}

ListenerCore::~ListenerCore() {
    assert(!armed_ && waiters_head_ == nullptr);
    while (count_ > 0)
        ::close(pop_ready());
}

void ListenerCore::release() noexcept {
    assert(refs_ > 0);
    if (--refs_ == 0)
        delete this;
}

void ListenerCore::close() noexcept {
    if (closed_)
        return;
    closed_ = true;
    fail_waiters(ECANCELED);
    while (count_ > 0)
        ::close(pop_ready());
    pending_error_ = 0;
    fd_.close(); // cancels an armed multishot request and single-shot accepts first
}

bool ListenerCore::take_ready(int& result) noexcept {
    if (count_ > 0) {
        result = pop_ready();
        return true;
    }
    if (pending_error_ != 0) {
        result = -std::exchange(pending_error_, 0);
        return true;
    }
    return false;
}

void ListenerCore::start(AcceptAwaiter& waiter, EventLoop& loop) {
    if (!loop.options().multishot_accept || multishot_state_ == Multishot::unsupported) {
        waiter.start_single_shot(loop);
        return;
    }
    if (!armed_)
        arm(loop);
    waiter.prev_ = waiters_tail_;
    waiter.next_ = nullptr;
    if (waiters_tail_ != nullptr)
        waiters_tail_->next_ = &waiter;
    else
        waiters_head_ = &waiter;
    waiters_tail_ = &waiter;
}

void ListenerCore::withdraw(AcceptAwaiter& waiter) noexcept {
    if (waiter.prev_ != nullptr)
        waiter.prev_->next_ = waiter.next_;
    else
        waiters_head_ = waiter.next_;
    if (waiter.next_ != nullptr)
        waiter.next_->prev_ = waiter.prev_;
    else
        waiters_tail_ = waiter.prev_;
    waiter.prev_ = waiter.next_ = nullptr;
}

AcceptAwaiter* ListenerCore::pop_waiter() noexcept {
    AcceptAwaiter* first = waiters_head_;
    if (first != nullptr)
        withdraw(*first);
    return first;
}

void ListenerCore::fail_waiters(int error) noexcept {
    while (AcceptAwaiter* waiter = pop_waiter())
        waiter->deliver(-error);
}

thread_local bool multishot_accept_einval_for_tests = false;

void ListenerCore::arm(EventLoop& loop) {
    int flags = SOCK_CLOEXEC;
    if (std::exchange(multishot_accept_einval_for_tests, false))
        flags |= 1 << 30; // not an accept flag: the kernel answers -EINVAL
    loop.io().accept_multishot(multishot_, fd_.get(), flags);
    loop_ = &loop;
    armed_ = true;
    fd_.op_started(loop);
    add_ref(); // the request's state must outlive the listener until its final completion
}

void ListenerCore::push_ready(int fd) {
    if (count_ == ready_.size()) {
        // Grow the ring buffer, unrolling it (allocation only while the backlog grows).
        std::vector<int> bigger(ready_.empty() ? 16 : ready_.size() * 2);
        for (std::size_t i = 0; i < count_; ++i)
            bigger[i] = ready_[(head_ + i) % ready_.size()];
        ready_ = std::move(bigger);
        head_ = 0;
    }
    ready_[(head_ + count_) % ready_.size()] = fd;
    ++count_;
}

int ListenerCore::pop_ready() noexcept {
    assert(count_ > 0);
    int fd = ready_[head_];
    head_ = (head_ + 1) % ready_.size();
    --count_;
    return fd;
}

void ListenerCore::report_resource_error(EventLoop& loop, int error) noexcept {
    if (resource_error_logged_)
        return;
    resource_error_logged_ = true;
    try {
        loop.log(fmt::format("accept on {}: {}; retrying every 100 ms until descriptors free up",
                             local_, std::strerror(error)));
    } catch (...) {
        // Logging is best effort; the back-off goes on.
    }
}

void ListenerCore::on_completion(std::int32_t result, std::uint32_t flags) noexcept {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (result >= 0) {
        multishot_state_ = Multishot::supported;
        if (closed_) {
            ::close(result);
        } else if (AcceptAwaiter* waiter = pop_waiter()) {
            waiter->deliver(result);
        } else {
            try {
                push_ready(result);
            } catch (...) {
                ::close(result); // out of memory: the client sees a reset
            }
            if (more && count_ >= max_ready) {
                try {
                    loop_->io().cancel(multishot_); // nobody takes them: let the kernel queue
                } catch (...) {
                    // The request stays armed; the buffer grows instead.
                }
            }
        }
    } else if (!closed_) {
        const int error = -result;
        if (error == EINVAL && multishot_state_ == Multishot::unknown) {
            // No multishot accept in this kernel: every waiter runs its own request.
            multishot_state_ = Multishot::unsupported;
            while (AcceptAwaiter* waiter = pop_waiter()) {
                try {
                    waiter->start_single_shot(*loop_);
                } catch (...) {
                    waiter->deliver(-ENOMEM);
                }
            }
        } else if (error != ECANCELED && !is_transient_accept_error(error)) {
            if (waiters_head_ != nullptr)
                fail_waiters(error);
            else
                pending_error_ = error;
        }
    }
    if (more)
        return;
    // The request has ended: arm it again if accepts are waiting.
    armed_ = false;
    fd_.op_finished();
    if (!closed_ && waiters_head_ != nullptr) {
        try {
            arm(*loop_);
        } catch (...) {
            fail_waiters(ENOMEM);
        }
    }
    release(); // the request's reference; may delete this
}

AcceptAwaiter::~AcceptAwaiter() {
    if (mode_ == Mode::queued && !delivered_ && !withdrawn_)
        core_->withdraw(*this); // the frame went while waiting (a task abandoned at close)
    if (!taken_) {
        // A connection nobody will take: close it rather than leak it.
        if (mode_ == Mode::queued && delivered_ && result_ >= 0)
            ::close(result_);
        else if (mode_ == Mode::single_shot && !op_.in_flight && op_.result >= 0)
            ::close(op_.result);
    }
    if (mode_ == Mode::single_shot)
        core_->socket().op_finished();
    core_->release();
}

bool AcceptAwaiter::await_ready() noexcept {
    if (core_->closed()) {
        result_ = -EBADF;
        return true;
    }
    return core_->take_ready(result_);
}

bool AcceptAwaiter::await_suspend(std::coroutine_handle<> caller) {
    if (!enter(caller))
        return false;
    try {
        core_->start(*this, *task_->loop());
    } catch (...) {
        task_->clear_suspension();
        throw;
    }
    if (mode_ == Mode::idle)
        mode_ = Mode::queued;
    return true;
}

int AcceptAwaiter::await_resume() {
    if (task_ == nullptr) { // ready at once
        taken_ = true;
        return result_;
    }
    if (mode_ == Mode::single_shot) {
        task_->clear_suspension();
        const int result = op_.result;
        if (result == -ECANCELED && task_->cancel_requested()) {
            task_->clear_cancel_request();
            throw CancelledError();
        }
        if (result >= 0)
            peer_.set_native_size(peer_length_);
        taken_ = true;
        return result;
    }
    leave(); // CancelledError if the cancel came before a descriptor did
    taken_ = true;
    return result_;
}

void AcceptAwaiter::request_cancel(TaskState&) noexcept {
    if (mode_ == Mode::single_shot) {
        task_->loop()->io().cancel(op_); // resumes with the request's own completion
        return;
    }
    if (delivered_)
        return; // already woken with a descriptor: it is returned, the cancel stays pending
    core_->withdraw(*this);
    withdrawn_ = true;
    mark_cancelled();
    task_->loop()->ready_queue().push(task_);
}

std::string AcceptAwaiter::what_awaited() const {
    return "accept on " + core_->local_address().to_string();
}

void AcceptAwaiter::deliver(int result) noexcept {
    result_ = result;
    delivered_ = true;
    task_->loop()->ready_queue().push(task_);
}

void AcceptAwaiter::start_single_shot(EventLoop& loop) {
    op_.waiter = task_;
    peer_length_ = Address::native_capacity();
    loop.io().accept(op_, core_->socket().get(), peer_.native(), &peer_length_, SOCK_CLOEXEC);
    mode_ = Mode::single_shot;
    core_->socket().op_started(loop);
}

} // namespace ringlet::detail
