// Task state design.
// States: pending (not started or suspended) -> running (inside run()) -> done, with outcome
// value, exception or cancelled. A task that is cancelled before its first step never runs.
// Ownership: the state owns the root frame; the loop holds one reference until the task is
// done, every TaskHandle one more. The last release destroys the frame (and with it every
// nested frame of the chain), after reporting an exception nobody retrieved.
// Who touches what: awaiters set waiting_on_/resume_point_ (SuspendPoint), cancel() reads
// waiting_on_, run() is called only from the loop's dispatch step.
#include "ringlet/detail/task_state.hpp"

#include "ringlet/detail/frame_allocator.hpp"
#include "ringlet/detail/promise.hpp"
#include "ringlet/event_loop.hpp"

#include <cassert>
#include <fmt/format.h>
#include <new>

namespace ringlet::detail {
namespace {
std::uint64_t next_task_id = 1;
}

TaskState* TaskState::create(EventLoop& loop, std::coroutine_handle<> root, PromiseBase& promise,
                             std::string name) {
    void* block = allocate_frame(sizeof(TaskState));
    return new (block) TaskState(loop, root, promise, std::move(name));
}

TaskState::TaskState(EventLoop& loop, std::coroutine_handle<> root, PromiseBase& promise,
                     std::string name)
    : loop_(&loop), root_(root), promise_(&promise), name_(std::move(name)), id_(next_task_id++) {
    promise.task = this;
}

void TaskState::run() {
    assert(!done() && !running_);
    if (!started_) {
        started_ = true;
        if (cancel_requested_) {
            // asyncio: a task cancelled before its first step never runs its body.
            cancel_requested_ = false;
            outcome_ = Outcome::cancelled;
            finish();
            return;
        }
        resume_point_ = root_;
    }
    TaskState* outer = std::exchange(current_task_state, this);
    running_ = true;
    std::exchange(resume_point_, {}).resume();
    running_ = false;
    current_task_state = outer;
    if (root_finished_) {
        if (promise_->exception) {
            try {
                std::rethrow_exception(promise_->exception);
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
    waiting_on_ = nullptr;
    if (loop_)
        loop_->tasks().note_finished();
    if (DoneObserver* supervisor = std::exchange(supervisor_, nullptr))
        supervisor->on_task_done(*this);
    if (DoneObserver* observer = std::exchange(done_observer_, nullptr))
        observer->on_task_done(*this);
    release(); // the loop's reference
}

void TaskState::abandon() noexcept {
    assert(!done() && !running_);
    waiting_on_ = nullptr;
    outcome_ = Outcome::cancelled;
    finish();
}

bool TaskState::cancel() noexcept {
    if (done())
        return false;
    cancel_requested_ = true;
    if (Suspension* on = waiting_on_)
        on->request_cancel();
    return true;
}

void TaskState::release() noexcept {
    assert(refs_ > 0);
    if (--refs_ == 0)
        destroy();
}

std::exception_ptr TaskState::take_exception() noexcept {
    exception_retrieved_ = true;
    return outcome_ == Outcome::exception ? promise_->exception : nullptr;
}

void TaskState::report_unretrieved_exception() noexcept {
    ExceptionContext context{"Task exception was never retrieved", promise_->exception, name()};
    if (loop_ != nullptr) {
        loop_->call_exception_handler(context);
        return;
    }
    try {
        std::rethrow_exception(context.exception);
    } catch (const std::exception& e) {
        fmt::print(stderr, "ringlet: {} (task '{}'): {}\n", context.message, name(), e.what());
    } catch (...) {
        fmt::print(stderr, "ringlet: {} (task '{}')\n", context.message, name());
    }
}

void TaskState::destroy() noexcept {
    if (outcome_ == Outcome::exception && !exception_retrieved_)
        report_unretrieved_exception();
    if (loop_)
        loop_->tasks().remove(*this);
    root_.destroy();
    this->~TaskState();
    deallocate_frame(this, sizeof(TaskState));
}

const std::string& TaskState::name() const {
    // Formatted on first use: most tasks are never asked for their name.
    if (name_.empty())
        name_ = fmt::format("Task-{}", id_);
    return name_;
}

std::string TaskState::describe() const {
    return fmt::format("task '{}'", name());
}

std::string TaskState::state_description() const {
    if (done())
        return outcome_ == Outcome::cancelled ? "cancelled" : "done";
    if (running_)
        return "running";
    if (waiting_on_)
        return "awaiting " + waiting_on_->what_awaited();
    return started_ ? "scheduled" : "created";
}

} // namespace ringlet::detail
