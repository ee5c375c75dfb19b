// wait_signal(): a signalfd read through the ring. The signals must be blocked while the read is
// pending, or their default action would run instead of the signalfd seeing them. Several waits
// may overlap on one thread (for different or equal signals), so the mask is reference counted
// per signal: the first wait that needs a signal the thread did not block already blocks it,
// and the last one to finish unblocks it; signals the thread blocked by itself stay blocked.
#include "ringlet/signal.hpp"

#include "ringlet/detail/io_awaiter.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <sys/signalfd.h>
#include <system_error>
#include <unistd.h>

namespace ringlet {
namespace {

struct SignalWaits {
    std::array<unsigned, NSIG> waits{}; ///< waits in progress that need each signal
    std::array<bool, NSIG> blocked_by_us{};
};
thread_local SignalWaits signal_waits;

std::string signal_list(const sigset_t& set) {
    std::string out;
    for (int s = 1; s < NSIG; ++s) {
        if (sigismember(&set, s) == 1) {
            if (!out.empty())
                out += ',';
            const char* name = sigabbrev_np(s);
            out += name != nullptr ? std::string("SIG") + name : std::to_string(s);
        }
    }
    return out;
}

/// Blocks the signals of `set` for this thread for as long as it lives (counted, see above).
class SignalBlock {
  public:
    explicit SignalBlock(const sigset_t& set) : set_(set) {
        sigset_t current;
        pthread_sigmask(SIG_SETMASK, nullptr, &current);
        sigset_t to_block;
        sigemptyset(&to_block);
        for (int s = 1; s < NSIG; ++s) {
            if (sigismember(&set_, s) != 1)
                continue;
            if (signal_waits.waits[s]++ == 0 && sigismember(&current, s) != 1) {
                signal_waits.blocked_by_us[s] = true;
                sigaddset(&to_block, s);
            }
        }
        pthread_sigmask(SIG_BLOCK, &to_block, nullptr);
    }
    SignalBlock(const SignalBlock&) = delete;
    SignalBlock& operator=(const SignalBlock&) = delete;
    ~SignalBlock() {
        sigset_t to_unblock;
        sigemptyset(&to_unblock);
        for (int s = 1; s < NSIG; ++s) {
            if (sigismember(&set_, s) != 1)
                continue;
            if (--signal_waits.waits[s] == 0 && signal_waits.blocked_by_us[s]) {
                signal_waits.blocked_by_us[s] = false;
                sigaddset(&to_unblock, s);
            }
        }
        pthread_sigmask(SIG_UNBLOCK, &to_unblock, nullptr);
    }

  private:
    sigset_t set_;
};

class FdCloser {
  public:
    explicit FdCloser(int fd) noexcept : fd_(fd) {}
    FdCloser(const FdCloser&) = delete;
    FdCloser& operator=(const FdCloser&) = delete;
    ~FdCloser() { ::close(fd_); }

  private:
    int fd_;
};

class SignalReadAwaiter final : public detail::IoAwaiter<SignalReadAwaiter> {
  public:
    SignalReadAwaiter(int fd, signalfd_siginfo& info, const std::string& names) noexcept
        : fd_(fd), info_(info), names_(names) {}
    void prepare(detail::IoBackend& io, detail::IoOp& op) {
        io.read(op, fd_, std::as_writable_bytes(std::span(&info_, 1)), detail::current_position);
    }
    std::string what_awaited() const override { return "signal " + names_; }

  private:
    int fd_;
    signalfd_siginfo& info_;
    const std::string& names_;
};

Task<int> wait_signal_set(sigset_t set) {
    std::string names = signal_list(set);
    SignalBlock block(set);
    // A blocking descriptor: io_uring parks the read (poll-driven) until a signal is pending.
    int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "signalfd " + names);
    FdCloser closer(fd);
    signalfd_siginfo info{};
    for (;;) {
        SignalReadAwaiter reading(fd, info, names);
        std::int32_t result = co_await reading;
        if (result == static_cast<std::int32_t>(sizeof info))
            co_return static_cast<int>(info.ssi_signo);
        if (result != -EINTR && result != -EAGAIN)
            throw std::system_error(result < 0 ? -result : EIO, std::generic_category(),
                                    "read signalfd " + names);
    }
}

} // namespace

Task<int> wait_signal(std::vector<int> signals) {
    // Not a coroutine: bad arguments throw at the call.
    if (signals.empty())
        throw std::invalid_argument("ringlet::wait_signal: empty signal set");
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals) {
        if (s <= 0 || s >= NSIG || s == SIGKILL || s == SIGSTOP)
            throw std::invalid_argument("ringlet::wait_signal: signal " + std::to_string(s) +
                                        " cannot be waited for");
        sigaddset(&set, s);
    }
    return wait_signal_set(set);
}

} // namespace ringlet
