// EventLoop: the single-threaded asyncio-style loop on io_uring (one per thread), and run().
// One iteration, run_once(), is CPython's BaseEventLoop._run_once: timer housekeeping, poll
// timeout, one submit-and-wait on the ring, completions into the ready queue, due timers into
// the ready queue, then run exactly the handles that were ready. Design notes in
// lib/event_loop.cpp. Thread safety: only call_soon_threadsafe may be called from another thread.
#pragma once

#include "ringlet/detail/io_backend.hpp"
#include "ringlet/detail/ready_queue.hpp"
#include "ringlet/detail/task_ref.hpp"
#include "ringlet/detail/task_registry.hpp"
#include "ringlet/detail/timer_heap.hpp"
#include "ringlet/handle.hpp"
#include "ringlet/task.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace ringlet {

class ThreadPool;
namespace detail {
class RemoteInbox;
}

/// How the io_uring is set up; `automatic` probes the best the kernel accepts.
enum class RingSetup : std::uint8_t {
    automatic,    ///< SINGLE_ISSUER|DEFER_TASKRUN, else COOP_TASKRUN, else plain
    coop_taskrun, ///< force the COOP_TASKRUN fallback (else plain)
    plain,        ///< force a ring with no task-run flags
};

/// How call_soon_threadsafe wakes a loop when it is called on the thread of another loop.
enum class CrossLoopWake : std::uint8_t {
    automatic, ///< an IORING_OP_MSG_RING message from the caller's ring (Linux 5.18+), else eventfd
    eventfd,   ///< always the eventfd write, as from a thread without a loop
};

struct LoopOptions {
    /// asyncio's debug mode: slow-callback warnings, never-awaited tasks, pending tasks at
    /// close, foreign-thread checks. Also switched on by the environment RINGLET_DEBUG=1.
    bool debug = false;
    /// The clock is virtual: when nothing is ready and no I/O is in flight, it jumps to the
    /// next timer (trio's autojump clock, tokio's paused time).
    bool virtual_time = false;
    RingSetup ring_setup = RingSetup::automatic;
    /// Submission queue size; the completion queue is twice as large.
    unsigned ring_entries = 1024;
    /// Debug mode warns about a handle that runs longer than this.
    std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
    /// Listeners accept through one multishot request (Linux 5.19+; older kernels fall back by
    /// themselves); false makes every accept a single-shot request.
    bool multishot_accept = true;
    /// recv_buffer() receives through one multishot request per stream into the loop's pool of
    /// provided buffers (Linux 6.0+; older kernels fall back by themselves); false makes each
    /// receive a single-shot request into a user-space buffer of the same pool.
    bool multishot_recv = true;
    /// The size of each buffer of that pool: one receive fills at most one buffer.
    std::uint32_t recv_buffer_size = 16384;
    /// The most buffers the pool hands the kernel (a power of two up to 32768), added 64 at a
    /// time as receives run out; a receive that finds none falls back to a single-shot request.
    std::uint32_t recv_buffer_count = 4096;
    /// Applies to this loop as the sender and as the target of a cross-loop wake-up; MSG_RING is
    /// used only when both allow it. With automatic, the environment RINGLET_CROSS_LOOP_WAKE
    /// (automatic, msg_ring or eventfd) decides.
    CrossLoopWake cross_loop_wake = CrossLoopWake::automatic;
};

/// Counters since the loop was created.
struct LoopStats {
    std::uint64_t iterations = 0;
    std::uint64_t handles_run = 0;
    std::uint64_t completions = 0;
    std::uint64_t kernel_entries = 0; ///< io_uring_enter calls: one per wait or early submission
    std::uint64_t timers_scheduled = 0;
    std::uint64_t timers_cancelled = 0;
    std::size_t timers_pending = 0;  ///< scheduled, neither fired nor cancelled
    std::size_t timer_heap_size = 0; ///< heap entries, including lazily kept cancelled ones
    std::size_t live_tasks = 0;      ///< spawned and not finished
    std::size_t io_in_flight = 0;
    std::size_t recv_buffers = 0;           ///< receive-pool buffers handed to the kernel so far
    std::size_t recv_buffers_lent = 0;      ///< receive-pool buffers holding bytes not yet released
    std::uint64_t wakeups_by_eventfd = 0;   ///< call_soon_threadsafe wake-ups through the eventfd
    std::uint64_t wakeups_by_msg_ring = 0;  ///< wake-up messages received from other loops' rings
    std::uint64_t wake_messages_sent = 0;   ///< IORING_OP_MSG_RING wake-ups sent to other loops
    std::uint64_t wake_messages_failed = 0; ///< of those, refused by the kernel (eventfd used)
};

/// What the exception handler is told (asyncio's context dict).
struct ExceptionContext {
    std::string message;
    std::exception_ptr exception;
    std::string task_name; ///< empty when no task is involved
};

class EventLoop {
  public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using duration = clock::duration;
    using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;
    using LogHandler = std::function<void(std::string_view)>;

    /// Throws: std::system_error if io_uring cannot be set up; the message names the cause
    /// (kernel.io_uring_disabled, a seccomp profile, RLIMIT_MEMLOCK) and how to fix it.
    explicit EventLoop(LoopOptions options = {});
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// The loop running on this thread. Throws: std::logic_error if none is running.
    static EventLoop& current();
    static EventLoop* current_or_null() noexcept;

    /// The loop's clock: steady_clock, or the virtual clock with LoopOptions::virtual_time.
    time_point time() const noexcept;

    /// Runs `callback` on the next iteration, after the callbacks already scheduled.
    Handle call_soon(std::function<void()> callback);
    /// Runs `callback` once `delay` has passed (negative delays act as zero).
    TimerHandle call_later(duration delay, std::function<void()> callback);
    /// Runs `callback` at `when`; callbacks with equal deadlines run in scheduling order.
    TimerHandle call_at(time_point when, std::function<void()> callback);
    /// Schedules `callback` from any thread and wakes the loop if it waits in the kernel: on the
    /// thread of another running loop by an IORING_OP_MSG_RING message from that loop's ring
    /// (see LoopOptions::cross_loop_wake), otherwise through an eventfd.
    /// Thread safety: the only member callable from another thread. After close(): ignored.
    void call_soon_threadsafe(std::function<void()> callback);

    /// One iteration of the loop (asyncio's _run_once).
    void run_once();
    /// Runs until stop(). Throws: std::logic_error if closed, already running, another loop
    /// runs on this thread, or called from a thread other than the loop's.
    void run_forever();
    /// Spawns `task`, runs the loop until it finishes and returns its result (or rethrows).
    template <class T>
    T run_until_complete(Task<T> task);
    /// Makes run_forever() return after the current iteration.
    void stop() noexcept { stopping_ = true; }
    /// Cancels every live task, runs the loop until they finished (their in-flight I/O
    /// drained), shuts the default executor down and releases the ring. Idempotent.
    void close();
    bool is_running() const noexcept { return running_; }
    bool is_closed() const noexcept { return closed_; }

    LoopStats stats() const noexcept;
    /// One line per live task: id, name, state and what it awaits.
    std::string dump_tasks() const;
    bool debug() const noexcept { return debug_; }
    void set_debug(bool on) noexcept { debug_ = on; }
    const LoopOptions& options() const noexcept { return options_; }
    /// The I/O backend in use, e.g. "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)".
    const char* io_backend_name() const noexcept;

    /// Replaces the exception handler (nullptr restores the default: one line on stderr).
    void set_exception_handler(ExceptionHandler handler);
    /// Reports an exception nobody else will see (detached task, failing callback).
    void call_exception_handler(const ExceptionContext& context) noexcept;
    /// Replaces where warnings go (default: stderr).
    void set_log_handler(LogHandler handler);
    void log(std::string_view message) noexcept;

    /// The pool that to_thread() uses (created on first use, shut down by close()).
    ThreadPool& default_executor();

    // Internal parts, used by ringlet's awaiters; not for application code.
    detail::ReadyQueue& ready_queue() noexcept { return ready_; }
    detail::IoBackend& io() noexcept { return *io_; }
    detail::TaskRegistry& tasks() noexcept { return tasks_; }
    detail::TimerId add_timer(time_point when, detail::Ready target);
    bool cancel_timer(detail::TimerId id) noexcept;
    /// Spawns the frame as a task: returns its state with one reference for the caller.
    detail::TaskState* spawn_frame(std::coroutine_handle<> frame, detail::PromiseBase& promise,
                                   std::string_view name);
    /// A callback timer left the heap (fired, cancelled or abandoned).
    void callback_timer_done() noexcept { --callback_timers_; }
    /// Work on another thread that will wake the loop (keeps virtual time from jumping).
    void begin_external_work() noexcept { ++external_work_; }
    void end_external_work() noexcept { --external_work_; }
    const std::shared_ptr<detail::RemoteInbox>& remote_inbox() const noexcept { return inbox_; }
    /// Wakes the loop behind `target` with a message from this loop's ring (IORING_OP_MSG_RING),
    /// falling back to its eventfd. Loop thread only; needs io().wake_fd() >= 0.
    void send_wake(const std::shared_ptr<detail::RemoteInbox>& target) noexcept;
    /// Throws std::logic_error when called from a thread other than the loop's.
    void check_thread(const char* what) const;

  private:
    void run_ready(detail::Ready item);
    void run_until_done(detail::TaskState& task);
    /// Throws std::logic_error unless run_forever / run_until_complete may start now.
    void check_can_run(const char* what) const;
    void cancel_all_tasks_and_drain();
    /// How long the next wait may block: zero, a time, or detail::wait_forever.
    std::chrono::nanoseconds poll_timeout();
    std::size_t callback_timers_pending() const noexcept;

    LoopOptions options_;
    bool debug_;
    bool running_ = false;
    bool stopping_ = false;
    bool closed_ = false;
    std::thread::id owner_;
    time_point virtual_now_;
    detail::ReadyQueue ready_;
    detail::TimerHeap timers_;
    detail::TaskRegistry tasks_;
    std::unique_ptr<detail::IoBackend> io_;
    std::shared_ptr<detail::RemoteInbox> inbox_;
    std::unique_ptr<detail::Runnable, void (*)(detail::Runnable*)> inbox_reader_;
    std::unique_ptr<detail::Runnable, void (*)(detail::Runnable*)> wake_receiver_;
    std::unique_ptr<ThreadPool> executor_;
    std::size_t external_work_ = 0;
    std::size_t callback_timers_ = 0;
    LoopStats stats_;
    ExceptionHandler exception_handler_;
    LogHandler log_handler_;
};

template <class T>
T EventLoop::run_until_complete(Task<T> task) {
    // Before spawning (as asyncio checks before wrapping the coroutine): a loop that cannot run
    // must not be left with a task that would run later.
    check_can_run("run_until_complete");
    auto frame = task.release_for_spawn();
    detail::TaskRef main = detail::TaskRef::adopt(spawn_frame(frame, frame.promise(), "main"));
    run_until_done(*main.get());
    return detail::take_task_result<T>(*main.get());
}

/// asyncio.run(): creates a loop, runs `main` to completion, cancels and awaits every task
/// still alive, closes the loop, and returns main's result (or rethrows its exception).
/// Throws: std::logic_error if a loop is already running on this thread.
template <class T>
T run(Task<T> main, LoopOptions options = {}) {
    if (EventLoop::current_or_null() != nullptr)
        throw std::logic_error("ringlet::run() cannot be called while an event loop is running "
                               "on this thread; co_await the task instead");
    EventLoop loop(options);
    struct Closer {
        EventLoop& loop;
        ~Closer() { loop.close(); }
    } closer{loop};
    return loop.run_until_complete(std::move(main));
}

} // namespace ringlet
