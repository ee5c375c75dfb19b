// Task state design.
// States: pending (not started or suspended) -> running (inside run()) -> done, with outcome
// value, exception or cancelled. A task that is cancelled before its first step never runs.
// Where it lives: in the promise of the task's root frame (TaskState is PromiseBase's base), so
// a spawn allocates nothing but the frame. is_task_flag marks the root (its final_suspend
// returns to the loop instead of a continuation, whose word the observers take); the frame is
// found again from the promise's address (TaskPromise asserts the alignment that needs).
// Ownership: the loop holds one reference until the task is done, every TaskHandle one more.
// The last release destroys the frame (and with it every nested frame of the chain), after
// reporting an exception nobody retrieved.
// Who touches what: awaiters set waiting_on_/resume_point_ (SuspendPoint), cancel() reads
// waiting_on_, run() is called only from the loop's dispatch step.
// Names and ids are rare (debugging, start_server's connection table), so they live in a side
// table keyed by the state's address, which a flag says to look in; it is process-wide and
// never destroyed, because a handle may release the last reference of a task on any thread
// that owns it, after its loop and even after the thread's other thread-locals are gone.
#include "ringlet/detail/task_state.hpp"

#include "ringlet/detail/promise.hpp"
#include "ringlet/event_loop.hpp"

#include <atomic>
#include <cassert>
#include <fmt/format.h>
#include <mutex>
#include <unordered_map>

namespace ringlet::detail {
namespace {

struct Extras {
    std::string name; // empty until given or first asked for
    std::uint64_t id = 0;
};

class ExtrasTable {
  public:
    /// The entry of `task`, created if missing; the reference stays valid until erase().
    Extras& get(const TaskState* task) {
        std::lock_guard lock(mutex_);
        Extras& e = table_[task];
        if (e.id == 0)
            e.id = next_id_++;
        return e;
    }
    void erase(const TaskState* task) noexcept {
        std::lock_guard lock(mutex_);
        table_.erase(task);
    }

  private:
    std::mutex mutex_;
    std::unordered_map<const TaskState*, Extras> table_;
    std::uint64_t next_id_ = 1;
};

ExtrasTable& extras() {
    static ExtrasTable* table = new ExtrasTable();
    return *table;
}

} // namespace

void TaskState::start(EventLoop& loop, std::coroutine_handle<> root) noexcept {
    loop_ = &loop;
    resume_point_ = root;
    waiting_on_ = 0;
    observers_ = nullptr;
    registry_prev = registry_next = nullptr;
    refs_ = 2;
    outcome_ = Outcome::pending;
    flags_ = is_task_flag;
}

void TaskState::run() {
    assert(!done() && !(flags_ & running_flag));
    if (!(flags_ & started_flag)) {
        flags_ |= started_flag;
        if (flags_ & cancel_requested_flag) {
            // asyncio: a task cancelled before its first step never runs its body.
            flags_ &= ~cancel_requested_flag;
            outcome_ = Outcome::cancelled;
            finish();
            return;
        }
    }
    TaskState* outer = std::exchange(current_task_state, this);
    flags_ |= running_flag;
    resume_point_.resume();
    flags_ &= ~running_flag;
    current_task_state = outer;
    if (flags_ & root_finished_flag) {
        if (promise().exception) {
            try {
                std::rethrow_exception(promise().exception);
            } catch (const CancelledError&) {
                outcome_ = Outcome::cancelled;
            } catch (...) {
                outcome_ = Outcome::exception;
            }
        } else {
            outcome_ = Outcome::value;
        }
        finish();
    }
}

void TaskState::finish() noexcept {
    waiting_on_ = 0;
    if (loop_)
        loop_->tasks().note_finished();
    // Supervisor first (it stands at the head), then the observer; each is unlinked before it
    // is told, since it may go away while being told.
    while (DoneObserver* observer = observers_) {
        observers_ = observer->next_observer_;
        observer->next_observer_ = nullptr;
        observer->on_task_done(*this);
    }
    release(); // the loop's reference
}

void TaskState::abandon() noexcept {
    assert(!done() && !(flags_ & running_flag));
    waiting_on_ = 0;
    outcome_ = Outcome::cancelled;
    finish();
}

bool TaskState::cancel() noexcept {
    if (done())
        return false;
    flags_ |= cancel_requested_flag;
    if (waiting_on_ & timer_wait_bit) {
        // A sleep: its timer goes, and the task raises CancelledError when it runs. A timer that
        // already fired (or a yield) queued the task already: never queue it twice.
        auto* timer = reinterpret_cast<TimerId*>(waiting_on_ & ~timer_wait_bit);
        if (loop_->cancel_timer(*timer))
            loop_->ready_queue().push(this);
    } else if (auto* on = reinterpret_cast<Suspension*>(waiting_on_)) {
        on->request_cancel(*this);
    }
    return true;
}

bool TaskState::has_done_observer() const noexcept {
    for (DoneObserver* o = observers_; o != nullptr; o = o->next_observer_)
        if (!o->supervises_)
            return true;
    return false;
}

void TaskState::replace_observer(DoneObserver* observer, bool supervisor) noexcept {
    // Unlink the current one of this kind.
    for (DoneObserver** link = &observers_; *link != nullptr; link = &(*link)->next_observer_) {
        if ((*link)->supervises_ == supervisor) {
            DoneObserver* old = *link;
            *link = old->next_observer_;
            old->next_observer_ = nullptr;
            break;
        }
    }
    if (observer == nullptr)
        return;
    observer->supervises_ = supervisor;
    if (supervisor) { // told first: at the head
        observer->next_observer_ = observers_;
        observers_ = observer;
        return;
    }
    DoneObserver** tail = &observers_;
    while (*tail != nullptr)
        tail = &(*tail)->next_observer_;
    observer->next_observer_ = nullptr;
    *tail = observer;
}

std::exception_ptr TaskState::take_exception() noexcept {
    flags_ |= exception_retrieved_flag;
    return outcome_ == Outcome::exception ? promise().exception : nullptr;
}

void TaskState::report_unretrieved_exception() noexcept {
    ExceptionContext context{"Task exception was never retrieved", promise().exception, {}};
    try {
        context.task_name = name();
    } catch (...) {
    }
    if (loop_ != nullptr) {
        loop_->call_exception_handler(context);
        return;
    }
    try {
        std::rethrow_exception(context.exception);
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringlet: {} (task '{}'): {}\n", context.message, context.task_name,
                   e.what());
    } catch (...) {
        fmt::print(stderr, "ringlet: {} (task '{}')\n", context.message, context.task_name);
    }
}

void TaskState::destroy() noexcept {
    if (outcome_ == Outcome::exception && !(flags_ & exception_retrieved_flag))
        report_unretrieved_exception();
    if (loop_)
        loop_->tasks().remove(*this);
    if (flags_ & has_extras_flag)
        extras().erase(this);
    // The root frame holds this state: nothing of it may be touched after this line.
    std::coroutine_handle<PromiseBase>::from_promise(promise()).destroy();
}

std::uint64_t TaskState::id() const {
    flags_ |= has_extras_flag;
    return extras().get(this).id;
}

const std::string& TaskState::name() const {
    flags_ |= has_extras_flag;
    Extras& e = extras().get(this);
    if (e.name.empty())
        e.name = fmt::format("Task-{}", e.id);
    return e.name;
}

void TaskState::set_name(std::string_view name) {
    if (name.empty())
        return;
    flags_ |= has_extras_flag;
    extras().get(this).name.assign(name);
}

std::string TaskState::describe() const {
    return fmt::format("task '{}'", name());
}

std::string TaskState::state_description() const {
    if (done())
        return outcome_ == Outcome::cancelled ? "cancelled" : "done";
    if (flags_ & running_flag)
        return "running";
    if (waiting_on_ & timer_wait_bit) {
        auto* timer = reinterpret_cast<const TimerId*>(waiting_on_ & ~timer_wait_bit);
        return timer->slot == TimerId{}.slot ? "awaiting yield" : "awaiting sleep";
    }
    if (waiting_on_)
        return "awaiting " + reinterpret_cast<Suspension*>(waiting_on_)->what_awaited();
    return flags_ & started_flag ? "scheduled" : "created";
}

} // namespace ringlet::detail
