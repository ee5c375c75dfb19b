// Faults on loopback sockets: a peer reset (RST) surfaces as ECONNRESET naming the peer, a
// half-close gives end of stream while sending still works, writing to a departed peer is an
// error (never SIGPIPE), a refused connect names the address, and accept under EMFILE logs one
// line, backs off without spinning and resumes once descriptors free up (in a fork()ed child
// whose descriptor limit is lowered, for both accept modes).
#include "support.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <dirent.h>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace {

using namespace ringlet::test;
using ringlet::Address;
using ringlet::EventLoop;
using ringlet::Task;
using ringlet::TcpListener;
using ringlet::TcpStream;

const Address any_loopback = Address::parse("127.0.0.1:0");

struct Connection {
    TcpListener listener;
    TcpStream client;
    TcpStream server;
};

Task<Connection> connect_pair() {
    Connection c;
    c.listener = TcpListener::bind(any_loopback);
    c.client = co_await TcpStream::connect(c.listener.local_address());
    c.server = co_await c.listener.accept();
    co_return c;
}

std::string text(std::span<const std::byte> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

/// The highest open descriptor of this process.
int highest_descriptor() {
    int highest = 2;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (dirent* entry = ::readdir(dir))
            if (entry->d_name[0] != '.')
                highest = std::max(highest, std::atoi(entry->d_name));
        ::closedir(dir);
    }
    return highest;
}

/// Exit codes of the EMFILE child, for the parent's report.
enum EmfileResult : int {
    emfile_ok = 0,
    emfile_setup_failed = 1,
    emfile_accepted_while_exhausted = 2,
    emfile_log_count = 3,
    emfile_log_text = 4,
    emfile_busy_loop = 5,
    emfile_not_resumed = 6,
    emfile_logged_again = 7,
    emfile_stream_broken = 8,
    emfile_exception = 9,
};

const char* describe(int code) {
    switch (code) {
    case emfile_ok:
        return "ok";
    case emfile_setup_failed:
        return "could not lower the limit or fill the descriptor table";
    case emfile_accepted_while_exhausted:
        return "a connection was accepted while descriptors were exhausted";
    case emfile_log_count:
        return "not exactly one line was logged during the exhaustion";
    case emfile_log_text:
        return "the logged line does not name the listener and the error";
    case emfile_busy_loop:
        return "the loop spun during the back-off";
    case emfile_not_resumed:
        return "accepts did not resume after descriptors were freed";
    case emfile_logged_again:
        return "a second line was logged";
    case emfile_stream_broken:
        return "an accepted stream did not carry data";
    case emfile_exception:
        return "an exception escaped";
    default:
        return "unknown exit code";
    }
}

/// The child's scenario: returns an EmfileResult.
Task<int> emfile_scenario() {
    EventLoop& loop = EventLoop::current();
    std::vector<std::string> logged;
    loop.set_log_handler([&logged](std::string_view line) { logged.emplace_back(line); });
    TcpListener listener = TcpListener::bind(any_loopback);
    std::vector<TcpStream> accepted;
    accepted.reserve(8);

    // Client sockets exist before the table fills; connecting needs no new descriptor.
    constexpr int clients = 3;
    int client_fds[clients];
    for (int& fd : client_fds)
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = static_cast<rlim_t>(highest_descriptor() + 16);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
        co_return emfile_setup_failed;
    std::vector<int> fillers;
    fillers.reserve(64);
    for (;;) {
        int fd = ::dup(0);
        if (fd < 0)
            break;
        fillers.push_back(fd);
    }
    if (errno != EMFILE || fillers.empty())
        co_return emfile_setup_failed;

    // The accept starts after the limit was lowered: io_uring reads RLIMIT_NOFILE when a
    // request is prepared, not when it accepts.
    auto acceptor = [](TcpListener& l, std::vector<TcpStream>& into) -> Task<> {
        for (;;)
            into.push_back(co_await l.accept());
    };
    auto accepting = ringlet::spawn(acceptor(listener, accepted));
    co_await ringlet::sleep(10ms); // the accept is waiting (multishot: armed)
    for (int fd : client_fds) {
        // Loopback: the kernel completes the handshake into the accept queue at once.
        if (::connect(fd, listener.local_address().native(),
                      listener.local_address().native_size()) != 0)
            co_return emfile_setup_failed;
    }

    const std::uint64_t iterations_before = loop.stats().iterations;
    co_await ringlet::sleep(600ms);
    const std::uint64_t iterations = loop.stats().iterations - iterations_before;
    if (!accepted.empty())
        co_return emfile_accepted_while_exhausted;
    if (logged.size() != 1)
        co_return emfile_log_count;
    if (logged[0].find("accept on " + listener.local_address().to_string() + ": " +
                       std::strerror(EMFILE)) == std::string::npos)
        co_return emfile_log_text;
    // A 100 ms back-off gives about 6 retries of a few iterations each; a spin would give
    // thousands.
    if (iterations > 200)
        co_return emfile_busy_loop;

    for (int fd : fillers)
        ::close(fd);
    for (int i = 0; i < 300 && accepted.size() < clients; ++i)
        co_await ringlet::sleep(10ms);
    if (accepted.size() != clients)
        co_return emfile_not_resumed;
    if (logged.size() != 1)
        co_return emfile_logged_again;
    for (int i = 0; i < clients; ++i) {
        if (::send(client_fds[i], "ok", 2, MSG_NOSIGNAL) != 2)
            co_return emfile_stream_broken;
    }
    for (TcpStream& s : accepted) {
        std::array<std::byte, 2> buffer;
        co_await s.recv_exactly(buffer);
        if (text(buffer) != "ok")
            co_return emfile_stream_broken;
    }
    for (int fd : client_fds)
        ::close(fd);
    accepting.cancel();
    co_return emfile_ok;
}

/// Runs the EMFILE scenario in a fork()ed child (so this process keeps its limit) and returns
/// the child's exit code.
int run_emfile_child(bool multishot) {
    pid_t pid = ::fork();
    if (pid < 0)
        throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
        int code = emfile_exception;
        try {
            ringlet::LoopOptions o = options();
            o.multishot_accept = multishot;
            code = ringlet::run(emfile_scenario(), o);
        } catch (...) {
            code = emfile_exception;
        }
        ::_exit(code);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status))
        return 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

} // namespace

TEST_CASE("a peer reset surfaces as ECONNRESET naming the peer on the next operation",
          "[net][faults]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        std::string peer = c.client.local_address().to_string();
        // SO_LINGER with a zero timeout: close sends RST instead of FIN.
        linger abort{1, 0};
        REQUIRE(::setsockopt(c.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort,
                             sizeof(abort)) == 0);
        c.client.close();
        std::array<std::byte, 16> buffer;
        std::string what;
        try {
            (void)co_await c.server.recv(buffer);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_reset);
            what = e.what();
        }
        CHECK(what == "recv from " + peer + ": " + std::strerror(ECONNRESET));
        // The connection is gone: sending fails too (and raises no SIGPIPE).
        bool send_failed = false;
        try {
            (void)co_await c.server.send(std::string_view("late"));
        } catch (const std::system_error& e) {
            send_failed =
                e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset;
            CHECK(std::string(e.what()).starts_with("send to " + peer + ": "));
        }
        CHECK(send_failed);
    }());
}

TEST_CASE("a half-closed peer gives end of stream while sending still works", "[net][faults]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        co_await c.client.send_all(std::string_view("request"));
        c.client.shutdown_write();
        std::array<std::byte, 32> buffer;
        std::string got;
        for (;;) {
            std::size_t n = co_await c.server.recv(buffer);
            if (n == 0)
                break;
            got += text(std::span(buffer).first(n));
        }
        CHECK(got == "request");
        // The other direction is still open.
        co_await c.server.send_all(std::string_view("response"));
        c.server.shutdown_write();
        std::string back;
        for (;;) {
            std::size_t n = co_await c.client.recv(buffer);
            if (n == 0)
                break;
            back += text(std::span(buffer).first(n));
        }
        CHECK(back == "response");
        // Sending on the shut-down side is an error naming the peer.
        try {
            (void)co_await c.client.send(std::string_view("more"));
            FAIL("send after shutdown_write succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::broken_pipe);
            CHECK(std::string(e.what()).starts_with("send to " +
                                                    c.client.peer_address().to_string()));
        }
    }());
}

TEST_CASE("sending to a peer that closed fails with an error, never SIGPIPE", "[net][faults]") {
    run_real([]() -> Task<> {
        Connection c = co_await connect_pair();
        c.server.close();
        std::vector<std::byte> chunk(64 * 1024, std::byte{9});
        int error = 0;
        for (int i = 0; i < 1000 && error == 0; ++i) {
            try {
                (void)co_await c.client.send(chunk);
            } catch (const std::system_error& e) {
                error = e.code().value();
            }
        }
        CHECK((error == EPIPE || error == ECONNRESET));
    }());
}

TEST_CASE("a refused connect names the address", "[net][faults]") {
    Address closed;
    {
        TcpListener gone = TcpListener::bind(any_loopback);
        closed = gone.local_address();
    }
    std::string what = run_real([](Address where) -> Task<std::string> {
        try {
            (void)co_await TcpStream::connect(where);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            co_return e.what();
        }
        co_return "connected";
    }(closed));
    CHECK(what == "connect to " + closed.to_string() + ": " + std::strerror(ECONNREFUSED));

    std::string by_name = run_real([](std::uint16_t port) -> Task<std::string> {
        try {
            (void)co_await TcpStream::connect("localhost", port);
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            co_return e.what();
        }
        co_return "connected";
    }(closed.port()));
    CHECK(by_name.starts_with("connect to "));
    CHECK(by_name.ends_with(std::string(":") + std::to_string(closed.port()) + ": " +
                            std::strerror(ECONNREFUSED)));
}

TEST_CASE("accept under EMFILE logs once, backs off without spinning and resumes",
          "[net][faults]") {
    SECTION("multishot accept") {
        int code = run_emfile_child(true);
        INFO("child: " << describe(code) << " (exit code " << code << ")");
        CHECK(code == emfile_ok);
    }
    SECTION("single-shot accept") {
        int code = run_emfile_child(false);
        INFO("child: " << describe(code) << " (exit code " << code << ")");
        CHECK(code == emfile_ok);
    }
}
