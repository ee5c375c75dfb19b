// Ring design: every SQE's user_data is the address of the IoOp that asked for it, except the
// SQEs of cancel requests, whose user_data is 0 and whose completions are dropped, and the CQEs
// that other loops' IORING_OP_MSG_RING wake-ups post here, whose user_data is wake_message_tag
// (odd, so never the address of an IoOp) and which go to the wake sink. Completions
// only store the result and enqueue the waiter: nothing is resumed from here.
// One io_uring_enter per loop iteration (at most) carries every SQE prepared since the
// previous one; SQEs are submitted early only when the SQ is full.
#include "ring.hpp"

#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace ringlet::detail {

thread_local int ring_setup_fault_for_tests = 0;

namespace {

std::string io_uring_disabled_sysctl() {
    std::ifstream in("/proc/sys/kernel/io_uring_disabled");
    std::string value;
    if (in >> value)
        return value;
    return {};
}

[[noreturn]] void throw_setup_error(int err, unsigned entries) {
    std::string what = "io_uring_setup(entries=" + std::to_string(entries) + ") failed";
    switch (err) {
    case ENOSYS:
        what += ": io_uring is not available (the kernel lacks it, or a seccomp profile makes "
                "io_uring_setup return ENOSYS); ringlet needs Linux 5.19 or later with io_uring";
        break;
    case EPERM: {
        std::string sysctl = io_uring_disabled_sysctl();
        if (!sysctl.empty() && sysctl != "0")
            what += ": io_uring is disabled by kernel.io_uring_disabled=" + sysctl +
                    " (enable it with: sysctl -w kernel.io_uring_disabled=0)";
        else
            what += ": io_uring is blocked, most likely by a seccomp profile (containers: run "
                    "with a profile that allows io_uring_setup/io_uring_enter/io_uring_register, "
                    "e.g. --security-opt seccomp=unconfined)";
        break;
    }
    case ENOMEM:
        what += ": not enough locked memory for the ring (raise RLIMIT_MEMLOCK, ulimit -l, or "
                "use fewer entries)";
        break;
    case EINVAL:
        what += ": invalid parameters (entries must be between 1 and 32768)";
        break;
    default:
        break;
    }
    throw std::system_error(err, std::generic_category(), what);
}

int try_setup(io_uring& ring, unsigned entries, unsigned flags) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 2;
    return io_uring_queue_init_params(entries, &ring, &params);
}

/// LoopOptions::ring_setup, or RINGLET_RING_SETUP when the options leave it automatic (lets
/// a deployment or a test run force a fallback without recompiling).
RingSetup effective_setup(RingSetup requested) {
    const char* env = std::getenv("RINGLET_RING_SETUP");
    if (requested != RingSetup::automatic || env == nullptr || *env == '\0')
        return requested;
    std::string_view v(env);
    if (v == "automatic" || v == "defer_taskrun")
        return RingSetup::automatic;
    if (v == "coop_taskrun")
        return RingSetup::coop_taskrun;
    if (v == "plain")
        return RingSetup::plain;
    throw std::invalid_argument("RINGLET_RING_SETUP='" + std::string(v) +
                                "': expected automatic, defer_taskrun, coop_taskrun or plain");
}

/// LoopOptions::cross_loop_wake, or RINGLET_CROSS_LOOP_WAKE when the options leave it automatic.
CrossLoopWake effective_wake(CrossLoopWake requested) {
    const char* env = std::getenv("RINGLET_CROSS_LOOP_WAKE");
    if (requested != CrossLoopWake::automatic || env == nullptr || *env == '\0')
        return requested;
    std::string_view v(env);
    if (v == "automatic" || v == "msg_ring")
        return CrossLoopWake::automatic;
    if (v == "eventfd")
        return CrossLoopWake::eventfd;
    throw std::invalid_argument("RINGLET_CROSS_LOOP_WAKE='" + std::string(v) +
                                "': expected automatic, msg_ring or eventfd");
}

/// user_data of the CQE a wake-up message posts on the target ring.
constexpr std::uint64_t wake_message_tag = 1;

} // namespace

bool msg_ring_supported() noexcept {
    // io_uring_get_probe sets up (and tears down) a ring of its own: once per process.
    static const bool supported = [] {
        io_uring_probe* probe = io_uring_get_probe();
        if (probe == nullptr)
            return false;
        bool ok = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) != 0;
        io_uring_free_probe(probe);
        return ok;
    }();
    return supported;
}

Ring::Ring(const LoopOptions& options, ReadyQueue& ready)
    : ready_(ready), recv_buffer_size_(options.recv_buffer_size),
      recv_buffer_count_(options.recv_buffer_count), multishot_recv_(options.multishot_recv) {
    unsigned entries = options.ring_entries;
    RingSetup setup = effective_setup(options.ring_setup);
    CrossLoopWake wake = effective_wake(options.cross_loop_wake);
    if (int fault = std::exchange(ring_setup_fault_for_tests, 0))
        throw_setup_error(fault, entries);
    if (entries == 0 || entries > 32768)
        throw_setup_error(EINVAL, entries);
    BufferPool::check_options(recv_buffer_size_, recv_buffer_count_);

    struct Attempt {
        unsigned flags;
        const char* description;
    };
    // TASKRUN_FLAG makes the kernel raise IORING_SQ_TASKRUN when completions wait to be posted,
    // so that an iteration with work ready enters the kernel only when it must (6.1+ with
    // DEFER_TASKRUN; a kernel that refuses the pair gets DEFER_TASKRUN alone).
    const Attempt defer_flagged{IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                                    IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                                "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)"};
    const Attempt defer{IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
                            IORING_SETUP_DEFER_TASKRUN,
                        "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)"};
    const Attempt coop{IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                           IORING_SETUP_TASKRUN_FLAG,
                       "io_uring (COOP_TASKRUN)"};
    const Attempt plain{0, "io_uring (plain)"};
    Attempt attempts[4];
    std::size_t n = 0;
    if (setup == RingSetup::automatic) {
        attempts[n++] = defer_flagged;
        attempts[n++] = defer;
    }
    if (setup != RingSetup::plain)
        attempts[n++] = coop;
    attempts[n++] = plain;

    int rc = -EINVAL;
    for (std::size_t i = 0; i < n; ++i) {
        rc = try_setup(ring_, entries, attempts[i].flags);
        if (rc == 0) {
            description_ = attempts[i].description;
            defer_taskrun_ = (attempts[i].flags & IORING_SETUP_DEFER_TASKRUN) != 0;
            taskrun_flag_ = (attempts[i].flags & IORING_SETUP_TASKRUN_FLAG) != 0;
            break;
        }
        // EINVAL: this kernel does not know the flags; try the next fallback.
        if (rc != -EINVAL)
            break;
    }
    if (rc < 0)
        throw_setup_error(-rc, entries);
    if (!(ring_.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&ring_);
        throw std::system_error(ENOTSUP, std::generic_category(),
                                "io_uring lacks IORING_FEAT_NODROP (Linux 5.5+ is required)");
    }
    // Saves an fget/fput per io_uring_enter where supported (5.18+); optional.
    io_uring_register_ring_fd(&ring_);
    wake_messages_ = wake == CrossLoopWake::automatic && msg_ring_supported();
}

Ring::~Ring() {
    if (recv_pool_ != nullptr) {
        recv_pool_->detach(); // RecvBuffers still lent keep the memory, not the ring
        recv_pool_->release();
    }
    io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::next_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
        // SQ full: hand the queued SQEs to the kernel and take a fresh slot.
        int rc = io_uring_submit(&ring_);
        ++kernel_entries_;
        if (rc == -EBUSY) // CQ backlog (NODROP): make room by reaping first
            reap();
        else if (rc < 0 && rc != -EINTR)
            throw std::system_error(-rc, std::generic_category(), "io_uring_submit");
        sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
}

void Ring::attach(io_uring_sqe* sqe, IoOp& op) noexcept {
    io_uring_sqe_set_data(sqe, &op);
    op.in_flight = true;
    op.cancel_requested = false;
    ++in_flight_;
}

void Ring::read(IoOp& op, int fd, std::span<std::byte> buffer, std::uint64_t offset) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_read(sqe, fd, buffer.data(), static_cast<unsigned>(buffer.size()), offset);
    attach(sqe, op);
}

void Ring::write(IoOp& op, int fd, std::span<const std::byte> buffer, std::uint64_t offset) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_write(sqe, fd, buffer.data(), static_cast<unsigned>(buffer.size()), offset);
    attach(sqe, op);
}

void Ring::recv(IoOp& op, int fd, std::span<std::byte> buffer, int flags) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv(sqe, fd, buffer.data(), buffer.size(), flags);
    attach(sqe, op);
}

void Ring::send(IoOp& op, int fd, std::span<const std::byte> buffer, int flags) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_send(sqe, fd, buffer.data(), buffer.size(), flags | MSG_NOSIGNAL);
    attach(sqe, op);
}

void Ring::recvmsg(IoOp& op, int fd, msghdr* message, int flags) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recvmsg(sqe, fd, message, static_cast<unsigned>(flags));
    attach(sqe, op);
}

void Ring::sendmsg(IoOp& op, int fd, const msghdr* message, int flags) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_sendmsg(sqe, fd, message, static_cast<unsigned>(flags | MSG_NOSIGNAL));
    attach(sqe, op);
}

void Ring::accept(IoOp& op, int fd, sockaddr* address, socklen_t* length, int flags) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_accept(sqe, fd, address, length, flags);
    attach(sqe, op);
}

void Ring::accept_multishot(IoOp& op, int fd, int flags) {
    assert(op.sink != nullptr);
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, flags);
    attach(sqe, op);
}

void Ring::recv_multishot(IoOp& op, int fd) {
    assert(op.sink != nullptr && recv_pool_ != nullptr && recv_pool_->has_ring());
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BufferPool::group;
    attach(sqe, op);
}

BufferPool& Ring::recv_pool() {
    if (recv_pool_ == nullptr)
        recv_pool_ = BufferPool::create(multishot_recv_ ? &ring_ : nullptr, recv_buffer_size_,
                                        recv_buffer_count_);
    return *recv_pool_;
}

void Ring::connect(IoOp& op, int fd, const sockaddr* address, socklen_t length) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_connect(sqe, fd, address, length);
    attach(sqe, op);
}

void Ring::openat(IoOp& op, int dirfd, const char* path, int flags, mode_t mode) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_openat(sqe, dirfd, path, flags, mode);
    attach(sqe, op);
}

void Ring::fsync(IoOp& op, int fd, bool data_only) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_fsync(sqe, fd, data_only ? IORING_FSYNC_DATASYNC : 0);
    attach(sqe, op);
}

void Ring::close(IoOp& op, int fd) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_close(sqe, fd);
    attach(sqe, op);
}

void Ring::cancel_fd(int fd) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, 0);
}

void Ring::close_detached(int fd) {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_close(sqe, fd);
    // In order after the cancel_fd queued before it, without ordering anything else.
    io_uring_sqe_set_data64(sqe, 0);
}

void Ring::cancel_all() {
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY); // 5.19+, as multishot accept
    io_uring_sqe_set_data64(sqe, 0);
}

void Ring::cancel(IoOp& op) {
    if (!op.in_flight || op.cancel_requested)
        return;
    op.cancel_requested = true;
    io_uring_sqe* sqe = next_sqe();
    io_uring_prep_cancel(sqe, &op, 0);
    io_uring_sqe_set_data64(sqe, 0);
}

int Ring::wake_fd() const noexcept {
    // The real descriptor, not the registered index: other rings resolve it in their own table.
    return wake_messages_ ? ring_.ring_fd : -1;
}

void Ring::send_wake(IoOp& op, int target_fd) {
    assert(wake_messages_);
    io_uring_sqe* sqe = next_sqe();
    // IORING_MSG_DATA: the target gets a CQE with res 0 and user_data wake_message_tag; we get
    // our own CQE with 0 or -errno (-EBADFD: not a ring, -EOVERFLOW: its CQ is full...).
    io_uring_prep_msg_ring(sqe, target_fd, 0, wake_message_tag, 0);
    attach(sqe, op);
    // Submit now rather than with the next wait: the caller may be the last callback before
    // this loop stops, and the target would then not hear of it until we run again. An error
    // leaves the SQE queued; the next wait submits it.
    int rc = io_uring_submit(&ring_);
    ++kernel_entries_;
    if (rc == -EBUSY)
        reap(); // room for the next attempt; the SQE stays queued
}

inline bool Ring::must_enter_for_completions() const noexcept {
    if (taskrun_flag_) {
        unsigned flags = IO_URING_READ_ONCE(*ring_.sq.kflags);
        return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    }
    return defer_taskrun_ && in_flight_ > 0;
}

std::size_t Ring::submit_and_wait(std::chrono::nanoseconds timeout) {
    if (recv_pool_ != nullptr)
        recv_pool_->before_kernel_entry(); // hands over the buffers the iteration gave back
    int rc;
    if (timeout.count() <= 0) {
        // Non-blocking poll (work is ready): no timed wait in the kernel. Enter only if there
        // is something to submit or the kernel holds completions back until we do (task work
        // that DEFER_TASKRUN and COOP_TASKRUN run on entry, or an overflowed CQ). Without
        // TASKRUN_FLAG a DEFER_TASKRUN ring cannot tell: enter whenever anything is in flight.
        if (io_uring_sq_ready(&ring_) > 0 || must_enter_for_completions()) {
            rc = io_uring_submit_and_get_events(&ring_);
            ++kernel_entries_;
        } else if (io_uring_cq_ready(&ring_) == 0) {
            return 0; // tasks switching among themselves: no call into the completion walk
        } else {
            rc = 0;
        }
    } else if (timeout == wait_forever) {
        // One io_uring_enter. Without a timeout, liburing's submit_and_wait_timeout goes
        // through its get-CQE loop (peeks before and after entering): ~200 more instructions.
        rc = io_uring_submit_and_wait(&ring_, 1);
        ++kernel_entries_;
    } else {
        __kernel_timespec ts{};
        ts.tv_sec = timeout.count() / 1'000'000'000;
        ts.tv_nsec = timeout.count() % 1'000'000'000;
        io_uring_cqe* cqe = nullptr;
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        ++kernel_entries_;
    }
    // -ETIME: timeout; -EINTR: a signal, the next iteration waits again; -EBUSY: the CQ is
    // backed up, reaping below makes room and the next iteration resubmits.
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY)
        throw std::system_error(-rc, std::generic_category(), "io_uring_enter (submit and wait)");
    return reap();
}

std::size_t Ring::reap() noexcept {
    // The tail is read once per walk (io_uring_for_each_cqe loads it for every CQE). Each slot
    // is copied and handed back before its completion runs: a handler may need an SQE, and on
    // kernels that answer a full SQ with -EBUSY while completions wait (older ones; 6.18 does
    // not), next_sqe() reaps from inside this loop. That inner walk then starts after the slots
    // this one took, and this one goes on from wherever the inner one stopped. The ring is set
    // up without IORING_SETUP_CQE32, so a slot is one io_uring_cqe.
    std::size_t count = 0;
    const unsigned tail = io_uring_smp_load_acquire(ring_.cq.ktail);
    for (unsigned head = *ring_.cq.khead; static_cast<int>(tail - head) > 0;
         head = *ring_.cq.khead) {
        const io_uring_cqe& slot = ring_.cq.cqes[head & ring_.cq.ring_mask];
        const std::uint64_t user_data = slot.user_data;
        const std::int32_t res = slot.res;
        const std::uint32_t flags = slot.flags;
        io_uring_smp_store_release(ring_.cq.khead, head + 1);
        ++count;
        if (user_data == wake_message_tag) {
            if (wake_sink_ != nullptr)
                wake_sink_->on_completion(res, flags);
            continue;
        }
        auto* op = reinterpret_cast<IoOp*>(static_cast<std::uintptr_t>(user_data));
        if (op == nullptr)
            continue; // the completion of a cancel request
        if (op->sink != nullptr) {
            // Multishot: the request stays armed while the kernel sets CQE_F_MORE.
            if (!(flags & IORING_CQE_F_MORE)) {
                op->in_flight = false;
                --in_flight_;
            }
            op->sink->on_completion(res, flags);
            continue;
        }
        op->result = res;
        op->flags = flags;
        op->in_flight = false;
        --in_flight_;
        ready_.push(op->waiter);
    }
    return count;
}

} // namespace ringlet::detail
