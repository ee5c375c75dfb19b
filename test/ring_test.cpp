// Tests of the io_uring set-up: each RingSetup builds a working loop, automatic picks the best
// mode this kernel accepts, and set-up failures throw errors that say what to do.
#include "ring.hpp"
#include "support.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <optional>
#include <ringlet/detail/io_awaiter.hpp>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using ringlet::EventLoop;
using ringlet::LoopOptions;
using ringlet::RingSetup;
using ringlet::Task;

/// Sets (or unsets, with nullptr) an environment variable for the scope, then restores it.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name))
            old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_)
            ::setenv(name_, old_->c_str(), 1);
        else
            ::unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    const char* name_;
    std::optional<std::string> old_;
};

struct Pipe {
    int read_end = -1;
    int write_end = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        ::close(read_end);
        ::close(write_end);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
};

/// Sleeps, writes to the pipe through the ring, reads it back through the ring.
Task<std::string> sleep_write_read(int read_fd, int write_fd) {
    co_await ringlet::sleep(1ms);
    std::string_view message = "ring";
    std::int32_t written =
        co_await ringlet::detail::write_some(write_fd, std::as_bytes(std::span(message)));
    if (written != 4)
        throw std::runtime_error("write_some returned " + std::to_string(written));
    std::array<char, 16> buffer{};
    std::int32_t n =
        co_await ringlet::detail::read_some(read_fd, std::as_writable_bytes(std::span(buffer)));
    if (n < 0)
        throw std::runtime_error("read_some returned " + std::to_string(n));
    co_return std::string(buffer.data(), static_cast<std::size_t>(n));
}

/// Reads from `fd` while another task keeps the ready queue busy with yield_now().
Task<int> read_while_busy(int fd) {
    struct Parts {
        static Task<int> reader(int fd) {
            std::array<std::byte, 8> buffer{};
            std::int32_t n = co_await ringlet::detail::read_some(fd, buffer);
            co_return n;
        }
        static Task<long> spinner(ringlet::TaskHandle reader) {
            long spins = 0;
            auto deadline = std::chrono::steady_clock::now() + 10s;
            while (!reader.done() && std::chrono::steady_clock::now() < deadline) {
                co_await ringlet::yield_now();
                ++spins;
            }
            co_return spins;
        }
    };
    auto reader = ringlet::spawn(Parts::reader(fd), "reader");
    auto spinner = ringlet::spawn(Parts::spinner(reader), "spinner");
    long spins = co_await spinner;
    int n = co_await reader;
    if (spins == 0)
        throw std::logic_error("the spinner never yielded");
    co_return n;
}

LoopOptions with_setup(RingSetup setup) {
    LoopOptions o = ringlet::test::options();
    o.ring_setup = setup;
    return o;
}

std::string describe(const std::system_error& e) {
    return std::string(e.what()) + " [errno " + std::to_string(e.code().value()) + "]";
}

/// Constructs a loop whose ring set-up fails with `err` and returns the exception.
std::system_error setup_failure(int err) {
    ringlet::detail::ring_setup_fault_for_tests = err;
    try {
        EventLoop loop(ringlet::test::options());
    } catch (const std::system_error& e) {
        ringlet::detail::ring_setup_fault_for_tests = 0;
        return e;
    }
    ringlet::detail::ring_setup_fault_for_tests = 0;
    FAIL("EventLoop construction did not throw for errno " << err);
    throw std::logic_error("unreachable");
}

void check_loop_works(EventLoop& loop) {
    Pipe pipe;
    CHECK(loop.run_until_complete(sleep_write_read(pipe.read_end, pipe.write_end)) == "ring");
    CHECK(loop.stats().completions >= 2);
}

} // namespace

TEST_CASE("automatic ring set-up picks SINGLE_ISSUER|DEFER_TASKRUN on this kernel") {
    ScopedEnv env("RINGLET_RING_SETUP", nullptr); // the meson runs force a mode: not here
    EventLoop loop(with_setup(RingSetup::automatic));
    std::string name = loop.io_backend_name();
    WARN("automatic io_uring set-up: " << name);
    // A kernel older than 6.1 (or one that refuses the flags) falls back; the loop must still
    // say which mode it runs.
    bool known = name == "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)" ||
                 name == "io_uring (COOP_TASKRUN)" || name == "io_uring (plain)";
    CHECK(known);
    if (name != "io_uring (SINGLE_ISSUER|DEFER_TASKRUN)")
        WARN("the kernel refused DEFER_TASKRUN; automatic fell back to " << name);
    check_loop_works(loop);
}

TEST_CASE("forced COOP_TASKRUN ring set-up builds a working loop") {
    EventLoop loop(with_setup(RingSetup::coop_taskrun));
    std::string name = loop.io_backend_name();
    WARN("coop_taskrun io_uring set-up: " << name);
    bool known = name == "io_uring (COOP_TASKRUN)" || name == "io_uring (plain)";
    CHECK(known);
    CHECK(name.find("DEFER_TASKRUN") == std::string::npos);
    check_loop_works(loop);
}

TEST_CASE("forced plain ring set-up builds a working loop") {
    EventLoop loop(with_setup(RingSetup::plain));
    CHECK(std::string(loop.io_backend_name()) == "io_uring (plain)");
    check_loop_works(loop);
}

TEST_CASE("RINGLET_RING_SETUP forces the mode when the options leave it automatic") {
    {
        ScopedEnv env("RINGLET_RING_SETUP", "plain");
        EventLoop loop(with_setup(RingSetup::automatic));
        CHECK(std::string(loop.io_backend_name()) == "io_uring (plain)");
        check_loop_works(loop);
    }
    {
        // Options that name a mode win over the environment.
        ScopedEnv env("RINGLET_RING_SETUP", "defer_taskrun");
        EventLoop loop(with_setup(RingSetup::plain));
        CHECK(std::string(loop.io_backend_name()) == "io_uring (plain)");
    }
}

TEST_CASE("each ring set-up delivers I/O completions while the ready queue never empties") {
    for (RingSetup setup : {RingSetup::automatic, RingSetup::coop_taskrun, RingSetup::plain}) {
        Pipe pipe;
        EventLoop loop(with_setup(setup));
        CAPTURE(loop.io_backend_name());
        ssize_t written = 0;
        std::thread writer([&] {
            std::this_thread::sleep_for(20ms);
            written = ::write(pipe.write_end, "z", 1);
        });
        auto started = std::chrono::steady_clock::now();
        int n = loop.run_until_complete(read_while_busy(pipe.read_end));
        writer.join();
        CHECK(written == 1);
        CHECK(n == 1);
        CHECK(std::chrono::steady_clock::now() - started < 5s);
        loop.close();
    }
}

TEST_CASE("ring set-up failing with ENOSYS throws std::system_error naming io_uring and seccomp") {
    std::system_error e = setup_failure(ENOSYS);
    INFO(describe(e));
    CHECK(e.code() == std::error_code(ENOSYS, std::generic_category()));
    std::string what = e.what();
    CHECK(what.find("io_uring") != std::string::npos);
    CHECK(what.find("seccomp") != std::string::npos);
}

TEST_CASE("ring set-up failing with EPERM throws std::system_error naming the sysctl or "
          "seccomp") {
    std::system_error e = setup_failure(EPERM);
    INFO(describe(e));
    CHECK(e.code() == std::error_code(EPERM, std::generic_category()));
    std::string what = e.what();
    bool says_why = what.find("kernel.io_uring_disabled") != std::string::npos ||
                    what.find("seccomp") != std::string::npos;
    CHECK(says_why);
}

TEST_CASE("ring set-up failing with ENOMEM throws std::system_error naming RLIMIT_MEMLOCK") {
    std::system_error e = setup_failure(ENOMEM);
    INFO(describe(e));
    CHECK(e.code() == std::error_code(ENOMEM, std::generic_category()));
    CHECK(std::string(e.what()).find("RLIMIT_MEMLOCK") != std::string::npos);
}

TEST_CASE("the set-up fault hook fires once, then loops work again") {
    (void)setup_failure(ENOSYS);
    EventLoop loop(ringlet::test::options());
    check_loop_works(loop);
}

TEST_CASE("a ring of 1,000,000 entries throws std::system_error EINVAL naming the entries") {
    LoopOptions o = ringlet::test::options();
    o.ring_entries = 1'000'000;
    try {
        EventLoop loop(o);
        FAIL("EventLoop accepted 1,000,000 ring entries");
    } catch (const std::system_error& e) {
        INFO(describe(e));
        CHECK(e.code() == std::error_code(EINVAL, std::generic_category()));
        CHECK(std::string(e.what()).find("1000000") != std::string::npos);
    }
}

TEST_CASE("a ring of 0 entries throws std::system_error EINVAL") {
    LoopOptions o = ringlet::test::options();
    o.ring_entries = 0;
    CHECK_THROWS_MATCHES(EventLoop(o), std::system_error,
                         Catch::Predicate<std::system_error>([](const std::system_error& e) {
                             return e.code() == std::error_code(EINVAL, std::generic_category());
                         }));
}

TEST_CASE("RINGLET_RING_SETUP=bogus throws std::invalid_argument naming the value") {
    ScopedEnv env("RINGLET_RING_SETUP", "bogus");
    try {
        EventLoop loop(with_setup(RingSetup::automatic));
        FAIL("EventLoop accepted RINGLET_RING_SETUP=bogus");
    } catch (const std::invalid_argument& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find("'bogus'") != std::string::npos);
    }
}
