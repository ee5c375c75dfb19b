// Event loop design.
// Parts: ReadyQueue (FIFO of tasks and Runnables), TimerHeap, IoBackend (the Ring),
// TaskRegistry, and a RemoteInbox whose eventfd read stays armed on the ring so that
// call_soon_threadsafe wakes a loop blocked in io_uring_enter. Between two loops the caller's ring
// sends an IORING_OP_MSG_RING message to ours instead (a WakeMessage on the sender, the
// WakeReceiver here); the callbacks themselves always travel through the inbox's mutex-protected
// queue. run_once() is asyncio's _run_once; run_ready() is the one place where coroutines are
// resumed and callbacks called: completions and timers only enqueue. Virtual time: time() returns
// virtual_now_, which poll_timeout() moves to the next deadline when nothing is ready and nothing
// outside the loop (I/O, worker threads) can wake it.
#include "ringlet/event_loop.hpp"

#include "ring.hpp"
#include "ringlet/detail/buffer_pool.hpp"
#include "ringlet/detail/callback.hpp"
#include "ringlet/detail/remote_inbox.hpp"
#include "ringlet/thread.hpp"

#include <cstdlib>
#include <fmt/format.h>
#include <sstream>

namespace ringlet {
namespace {

thread_local EventLoop* running_loop = nullptr;

constexpr auto max_poll_timeout = std::chrono::hours(24);

bool debug_from_environment() noexcept {
    static const bool on = [] {
        const char* v = std::getenv("RINGLET_DEBUG");
        return v != nullptr && *v != '\0' && std::string_view(v) != "0";
    }();
    return on;
}

std::string thread_name(std::thread::id id) {
    std::ostringstream out;
    out << id;
    return out.str();
}

std::string describe_exception(const std::exception_ptr& e) {
    if (!e)
        return {};
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

/// Marks the loop as the one running on this thread for the scope. Restores the previous mark:
/// close() drains a loop this way even while another loop runs on the thread (a loop created
/// and destroyed inside a callback), and that loop must stay current afterwards.
class RunningScope {
  public:
    RunningScope(EventLoop& loop, bool& running)
        : running_(running), previous_(std::exchange(running_loop, &loop)) {
        running_ = true;
    }
    ~RunningScope() {
        running_ = false;
        running_loop = previous_;
    }

  private:
    bool& running_;
    EventLoop* previous_;
};

} // namespace

namespace detail {

/// Runs every callback other threads posted to `loop` (loop thread).
void run_inbox_callbacks(EventLoop& loop, RemoteInbox& inbox) {
    for (auto& callback : inbox.take_all()) {
        try {
            callback();
        } catch (...) {
            loop.call_exception_handler(
                {"Exception in callback from call_soon_threadsafe", std::current_exception(), {}});
        }
    }
}

/// Keeps a read armed on the inbox eventfd; on completion runs what other threads posted.
class InboxReader final : public Runnable {
  public:
    InboxReader(EventLoop& loop, std::shared_ptr<RemoteInbox> inbox, LoopStats& stats)
        : loop_(loop), inbox_(std::move(inbox)), stats_(stats) {
        op_.waiter = this;
    }
    void arm() {
        loop_.io().read(op_, inbox_->eventfd(), std::as_writable_bytes(std::span(&counter_, 1)), 0);
    }
    void cancel() { loop_.io().cancel(op_); }
    bool armed() const noexcept { return op_.in_flight; }
    void run() override {
        if (op_.result == -ECANCELED || loop_.is_closed())
            return;
        ++stats_.wakeups_by_eventfd;
        run_inbox_callbacks(loop_, *inbox_);
        arm();
    }
    std::string describe() const override { return "call_soon_threadsafe callbacks"; }

  private:
    EventLoop& loop_;
    std::shared_ptr<RemoteInbox> inbox_;
    LoopStats& stats_;
    IoOp op_;
    std::uint64_t counter_ = 0;
};

/// Target side of a cross-loop wake-up: told by the ring of each wake-up message another loop
/// sent (IORING_OP_MSG_RING), it queues itself once and then runs what was posted.
class WakeReceiver final : public Runnable, public CompletionSink {
  public:
    WakeReceiver(EventLoop& loop, std::shared_ptr<RemoteInbox> inbox, LoopStats& stats)
        : loop_(loop), inbox_(std::move(inbox)), stats_(stats) {}
    void on_completion(std::int32_t, std::uint32_t) noexcept override {
        ++stats_.wakeups_by_msg_ring;
        if (!std::exchange(queued_, true))
            loop_.ready_queue().push(this);
    }
    void run() override {
        queued_ = false;
        if (!loop_.is_closed())
            run_inbox_callbacks(loop_, *inbox_);
    }
    void abandon() noexcept override { queued_ = false; }
    std::string describe() const override {
        return "call_soon_threadsafe callbacks (woken by another loop)";
    }

  private:
    EventLoop& loop_;
    std::shared_ptr<RemoteInbox> inbox_;
    LoopStats& stats_;
    bool queued_ = false;
};

/// Sender side of a cross-loop wake-up: the IORING_OP_MSG_RING request on the sender's ring.
/// It holds the target's inbox, and with it the duplicate of the target's ring descriptor,
/// until the kernel is done, so the message never reaches a reused descriptor number. If the
/// kernel refuses the message (the target ring is gone, its CQ is full...), the eventfd wakes
/// the target instead. Deletes itself once its completion was handled.
class WakeMessage final : public Runnable {
  public:
    WakeMessage(std::shared_ptr<RemoteInbox> target, LoopStats& stats)
        : target_(std::move(target)), stats_(stats) {
        op_.waiter = this;
    }
    IoOp& op() noexcept { return op_; }
    RemoteInbox& target() noexcept { return *target_; }
    void run() override {
        if (op_.result < 0)
            ++stats_.wake_messages_failed;
        finish();
    }
    void abandon() noexcept override { finish(); } // the sender closed after the completion
    std::string describe() const override { return "wake-up message to another loop"; }

  private:
    void finish() noexcept {
        if (op_.result < 0)
            target_->wake_by_eventfd();
        delete this;
    }

    std::shared_ptr<RemoteInbox> target_;
    LoopStats& stats_;
    IoOp op_;
};

bool post_threadsafe(const std::shared_ptr<RemoteInbox>& inbox, std::function<void()> callback) {
    EventLoop* sender = running_loop;
    if (sender == nullptr || sender->is_closed() || sender->remote_inbox() == inbox ||
        inbox->ring_fd() < 0 || sender->io().wake_fd() < 0)
        return inbox->post(std::move(callback));
    RemoteInbox::Queued queued = inbox->enqueue(std::move(callback));
    if (queued == RemoteInbox::Queued::wake_needed)
        sender->send_wake(inbox);
    return queued != RemoteInbox::Queued::dropped;
}

void CallbackState::run() {
    if (std::exchange(in_timer_heap_, false) && loop_ != nullptr)
        loop_->callback_timer_done();
    if (!cancelled_ && loop_ != nullptr) {
        try {
            callback_();
        } catch (...) {
            loop_->call_exception_handler({"Exception in callback", std::current_exception(), {}});
        }
    }
    release(); // the loop's reference
}

void CallbackState::cancel() noexcept {
    if (cancelled_)
        return;
    cancelled_ = true;
    // A timer leaves the heap lazily; its reference goes now. A call_soon entry stays queued
    // and is skipped (and released) when its turn comes.
    if (in_timer_heap_ && loop_ != nullptr && loop_->cancel_timer(timer_)) {
        in_timer_heap_ = false;
        loop_->callback_timer_done();
        release();
    }
}

void CallbackState::abandon() noexcept {
    if (in_timer_heap_ && loop_ != nullptr)
        loop_->callback_timer_done();
    loop_ = nullptr;
    in_timer_heap_ = false;
    release();
}

void report_never_awaited(const PromiseBase& promise) noexcept {
    EventLoop* loop = EventLoop::current_or_null();
    bool debug = loop != nullptr ? loop->debug() : debug_from_environment();
    if (!debug)
        return;
    std::string message =
        fmt::format("coroutine '{}' was never awaited", promise.origin.function());
    if (loop != nullptr)
        loop->log(message);
    else
        fmt::print(stderr, "ringlet: {}\n", message);
}

} // namespace detail

EventLoop::EventLoop(LoopOptions options)
    : options_(options), debug_(options.debug || debug_from_environment()),
      owner_(std::this_thread::get_id()), virtual_now_(clock::now()),
      io_(std::make_unique<detail::Ring>(options_, ready_)),
      inbox_(std::make_shared<detail::RemoteInbox>(io_->wake_fd())),
      inbox_reader_(new detail::InboxReader(*this, inbox_, stats_),
                    [](detail::Runnable* r) { delete static_cast<detail::InboxReader*>(r); }),
      wake_receiver_(new detail::WakeReceiver(*this, inbox_, stats_),
                     [](detail::Runnable* r) { delete static_cast<detail::WakeReceiver*>(r); }) {
    static_cast<detail::InboxReader&>(*inbox_reader_).arm();
    io_->set_wake_sink(static_cast<detail::WakeReceiver*>(wake_receiver_.get()));
}

EventLoop::~EventLoop() {
    try {
        close();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringlet: error while closing the event loop: {}\n", e.what());
    }
    // Handles may keep finished tasks alive after the loop: cut their link to it.
    tasks_.for_each([](detail::TaskState& t) { t.detach_from_loop(); });
}

EventLoop& EventLoop::current() {
    if (running_loop == nullptr)
        throw std::logic_error("no ringlet event loop is running on this thread");
    return *running_loop;
}

EventLoop* EventLoop::current_or_null() noexcept {
    return running_loop;
}

EventLoop::time_point EventLoop::time() const noexcept {
    return options_.virtual_time ? virtual_now_ : clock::now();
}

void EventLoop::check_thread(const char* what) const {
    if (std::this_thread::get_id() != owner_)
        throw std::logic_error(fmt::format("EventLoop::{} called from thread {}, but the loop "
                                           "belongs to thread {}",
                                           what, thread_name(std::this_thread::get_id()),
                                           thread_name(owner_)));
}

Handle EventLoop::call_soon(std::function<void()> callback) {
    if (debug_)
        check_thread("call_soon");
    if (closed_)
        throw std::logic_error("call_soon on a closed event loop");
    auto* state = new detail::CallbackState(*this, std::move(callback));
    Handle handle(state);
    ready_.push(state);
    return handle;
}

TimerHandle EventLoop::call_later(duration delay, std::function<void()> callback) {
    return call_at(time() + std::max(delay, duration::zero()), std::move(callback));
}

TimerHandle EventLoop::call_at(time_point when, std::function<void()> callback) {
    if (debug_)
        check_thread("call_at");
    if (closed_)
        throw std::logic_error("call_at on a closed event loop");
    auto* state = new detail::CallbackState(*this, std::move(callback));
    TimerHandle handle(state);
    state->set_timer(add_timer(when, state), when);
    ++callback_timers_;
    return handle;
}

void EventLoop::call_soon_threadsafe(std::function<void()> callback) {
    detail::post_threadsafe(inbox_, std::move(callback));
}

void EventLoop::send_wake(const std::shared_ptr<detail::RemoteInbox>& target) noexcept {
    detail::WakeMessage* message = nullptr;
    try {
        message = new detail::WakeMessage(target, stats_);
        io_->send_wake(message->op(), target->ring_fd());
        ++stats_.wake_messages_sent;
    } catch (...) {
        // No SQE (the ring failed to submit) or no memory: the eventfd still wakes the target.
        delete message;
        target->wake_by_eventfd();
    }
}

detail::TimerId EventLoop::add_timer(time_point when, detail::Ready target) {
    ++stats_.timers_scheduled;
    return timers_.schedule(when, target);
}

bool EventLoop::cancel_timer(detail::TimerId id) noexcept {
    if (!timers_.cancel(id))
        return false;
    ++stats_.timers_cancelled;
    return true;
}

detail::TaskState* EventLoop::spawn_frame(std::coroutine_handle<> frame,
                                          detail::PromiseBase& promise, std::string_view name) {
    if (debug_) {
        try {
            check_thread("spawn");
        } catch (...) {
            frame.destroy(); // the Task gave up its frame: do not leak it
            throw;
        }
    }
    if (closed_) {
        frame.destroy();
        throw std::logic_error("spawn on a closed event loop");
    }
    detail::TaskState* task = &promise;
    task->start(*this, frame); // references: the loop's and the caller's
    if (!name.empty()) {
        try {
            task->set_name(name);
        } catch (...) {
            frame.destroy();
            throw;
        }
    }
    tasks_.add(*task);
    ready_.push(task);
    return task;
}

std::chrono::nanoseconds EventLoop::poll_timeout() {
    if (!ready_.empty() || stopping_)
        return std::chrono::nanoseconds::zero();
    std::optional<time_point> deadline = timers_.next_deadline();
    if (!deadline)
        return detail::wait_forever;
    if (options_.virtual_time) {
        bool inbox_armed = static_cast<detail::InboxReader&>(*inbox_reader_).armed();
        std::size_t user_io = io_->in_flight() - (inbox_armed ? 1 : 0);
        if (user_io == 0 && external_work_ == 0) {
            virtual_now_ = std::max(virtual_now_, *deadline);
            return std::chrono::nanoseconds::zero();
        }
    }
    auto wait = std::clamp<std::chrono::nanoseconds>(*deadline - time(), duration::zero(),
                                                     max_poll_timeout);
    return wait;
}

void EventLoop::run_once() {
    // 1. Timer housekeeping: compaction or lazy pops of cancelled timers.
    if (!timers_.empty())
        timers_.housekeeping();
    // 2-4. Poll timeout, one submit-and-wait, completions into the ready queue.
    const std::chrono::nanoseconds timeout = poll_timeout();
    if (options_.virtual_time && timeout != std::chrono::nanoseconds::zero()) [[unlikely]] {
        auto wait_started = clock::now();
        stats_.completions += io_->submit_and_wait(timeout);
        virtual_now_ += clock::now() - wait_started; // waited for real I/O: time passed
    } else {
        stats_.completions += io_->submit_and_wait(timeout);
    }
    // 5. Due timers, in deadline order (equal deadlines: scheduling order). asyncio compares
    // with now + clock_resolution; steady_clock's resolution is one tick. No timer, no clock
    // read: a loop that only switches tasks never asks for the time.
    if (!timers_.empty()) {
        time_point end = time() + duration(1);
        while (detail::Ready due = timers_.pop_due(end))
            ready_.push(due);
    }
    // 6. Run exactly the handles that are ready now; what they schedule runs next iteration.
    for (std::size_t n = ready_.size(); n > 0; --n)
        run_ready(ready_.pop());
    ++stats_.iterations;
}

namespace {

void run_item(detail::Ready item) {
    if (detail::TaskState* task = item.task())
        task->run();
    else
        item.runnable()->run();
}

void abandon_item(detail::Ready item) noexcept {
    if (detail::TaskState* task = item.task())
        task->abandon();
    else
        item.runnable()->abandon();
}

std::string describe_item(detail::Ready item) {
    if (detail::TaskState* task = item.task())
        return task->describe();
    return item.runnable()->describe();
}

} // namespace

void EventLoop::run_ready(detail::Ready item) {
    ++stats_.handles_run;
    if (!debug_) [[likely]] {
        run_item(item);
        return;
    }
    std::string what = describe_item(item); // before running: the item may be gone after it
    auto started = clock::now();
    run_item(item);
    auto took = clock::now() - started;
    if (took > options_.slow_callback_duration)
        log(fmt::format("Executing {} took {:.3f} seconds", what,
                        std::chrono::duration<double>(took).count()));
}

void EventLoop::check_can_run(const char* what) const {
    check_thread(what);
    if (closed_)
        throw std::logic_error(fmt::format("{} on a closed event loop", what));
    if (running_)
        throw std::logic_error("this event loop is already running");
    if (running_loop != nullptr)
        throw std::logic_error("cannot run an event loop while another loop is running on this "
                               "thread");
}

void EventLoop::run_forever() {
    check_can_run("run_forever");
    RunningScope scope(*this, running_);
    struct StopReset {
        bool& stopping;
        ~StopReset() { stopping = false; }
    } reset{stopping_};
    for (;;) {
        run_once();
        if (stopping_)
            break;
    }
}

void EventLoop::run_until_done(detail::TaskState& task) {
    struct StopWhenDone final : detail::DoneObserver {
        EventLoop& loop;
        explicit StopWhenDone(EventLoop& l) : loop(l) {}
        void on_task_done(detail::TaskState&) noexcept override { loop.stop(); }
    } observer(*this);
    task.set_done_observer(&observer);
    struct Detach {
        detail::TaskState& task;
        ~Detach() {
            if (!task.done())
                task.set_done_observer(nullptr);
        }
    } detach{task};
    run_forever();
    if (!task.done())
        throw std::logic_error("event loop stopped before the task completed");
}

void EventLoop::cancel_all_tasks_and_drain() {
    RunningScope scope(*this, running_);
    auto& reader = static_cast<detail::InboxReader&>(*inbox_reader_);
    // Can anything still happen without the tasks' help? Callback timers do not count: they
    // would keep close() waiting for nothing.
    auto can_progress = [&] {
        std::size_t user_io = io_->in_flight() - (reader.armed() ? 1 : 0);
        return !ready_.empty() || user_io > 0 || external_work_ > 0 ||
               timers_.live() > callback_timers_pending();
    };
    for (int round = 0; tasks_.unfinished() > 0; ++round) {
        if (round == 3) {
            // Tasks that swallow cancellation and wait on nothing that can happen: give up on
            // them. No I/O is in flight, so destroying their frames is safe.
            std::vector<detail::TaskState*> stubborn = tasks_.unfinished_tasks();
            // None of them runs again, so the end of one must wake nobody: a join observer
            // would queue its awaiting task, which is (or is about to be) abandoned too, and
            // close() would then abandon it a second time from the ready queue.
            for (detail::TaskState* t : stubborn) {
                t->set_done_observer(nullptr);
                t->set_supervisor(nullptr);
            }
            for (detail::TaskState* t : stubborn) {
                log(fmt::format("{} ignored cancellation at loop close ({}); destroying it",
                                t->describe(), t->state_description()));
                t->abandon();
            }
            break;
        }
        for (detail::TaskState* t : tasks_.unfinished_tasks())
            t->cancel();
        while (tasks_.unfinished() > 0 && can_progress()) {
            // stop() means nothing here (no run_forever to leave), but a stopping loop polls
            // without waiting, and the virtual clock would never jump to a cleanup's timer.
            stopping_ = false;
            run_once();
        }
    }
}

std::size_t EventLoop::callback_timers_pending() const noexcept {
    return callback_timers_;
}

void EventLoop::close() {
    if (closed_)
        return;
    if (running_)
        throw std::logic_error("cannot close a running event loop");
    check_thread("close");
    if (debug_)
        for (detail::TaskState* t : tasks_.unfinished_tasks())
            log(fmt::format("Task was destroyed but it is pending: {} ({})", t->describe(),
                            t->state_description()));
    cancel_all_tasks_and_drain();
    if (executor_)
        executor_->shutdown();
    inbox_->close();
    // Drain the inbox read so the kernel is done with its buffer before the ring goes.
    auto& reader = static_cast<detail::InboxReader&>(*inbox_reader_);
    reader.cancel();
    // Requests no task waits for (a listener's multishot accept, armed by a listener that
    // outlives its tasks) would never complete by themselves.
    if (io_->in_flight() > (reader.armed() ? 1u : 0u))
        io_->cancel_all();
    while (io_->in_flight() > 0)
        io_->submit_and_wait(std::chrono::milliseconds(100));
    closed_ = true;
    while (!ready_.empty())
        abandon_item(ready_.pop());
    timers_.clear([](detail::Ready target) { abandon_item(target); });
    executor_.reset();
}

LoopStats EventLoop::stats() const noexcept {
    LoopStats s = stats_;
    s.timers_pending = timers_.live();
    s.timer_heap_size = timers_.size();
    s.live_tasks = tasks_.unfinished();
    std::size_t armed = static_cast<detail::InboxReader&>(*inbox_reader_).armed() ? 1 : 0;
    s.io_in_flight = io_->in_flight() - armed;
    s.kernel_entries = io_->kernel_entries();
    if (const detail::BufferPool* pool = io_->recv_pool_if_created()) {
        s.recv_buffers = pool->ring_buffers();
        s.recv_buffers_lent = pool->lent();
    }
    return s;
}

std::string EventLoop::dump_tasks() const {
    std::string out;
    for (detail::TaskState* t : tasks_.unfinished_tasks())
        out += fmt::format("#{} '{}' {} [coroutine {}]\n", t->id(), t->name(),
                           t->state_description(), t->promise().origin.function());
    return out;
}

const char* EventLoop::io_backend_name() const noexcept {
    return io_->describe();
}

void EventLoop::set_exception_handler(ExceptionHandler handler) {
    exception_handler_ = std::move(handler);
}

void EventLoop::call_exception_handler(const ExceptionContext& context) noexcept {
    try {
        if (exception_handler_) {
            exception_handler_(*this, context);
            return;
        }
        std::string line = "ringlet: " + context.message;
        if (!context.task_name.empty())
            line += fmt::format(" (task '{}')", context.task_name);
        if (context.exception)
            line += ": " + describe_exception(context.exception);
        fmt::print(stderr, "{}\n", line);
    } catch (...) {
        fmt::print(stderr, "ringlet: the exception handler threw while reporting: {}\n",
                   context.message);
    }
}

void EventLoop::set_log_handler(LogHandler handler) {
    log_handler_ = std::move(handler);
}

void EventLoop::log(std::string_view message) noexcept {
    try {
        if (log_handler_)
            log_handler_(message);
        else
            fmt::print(stderr, "ringlet: {}\n", message);
    } catch (...) {
    }
}

ThreadPool& EventLoop::default_executor() {
    if (closed_)
        throw std::logic_error("default_executor of a closed event loop");
    if (!executor_)
        executor_ = std::make_unique<ThreadPool>();
    return *executor_;
}

} // namespace ringlet
