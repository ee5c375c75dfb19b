// Tests of the echo samples as programs: echo_demo's exit code and table; echo_server driven by
// echo_client on a free port, then stopped with SIGTERM; echo_server's one-second grace period
// for a connection that stays open; echo_client's exit code when nothing listens. The binaries
// come from RINGLET_SAMPLES_DIR (set by test/meson.build), else ../samples next to this binary.
#include "support.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::filesystem::path samples_dir() {
    if (const char* dir = std::getenv("RINGLET_SAMPLES_DIR"); dir != nullptr && *dir != '\0')
        return dir;
    return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "samples";
}

/// A sample program running with its stdout on a pipe; killed if a test leaves it running.
class Program {
  public:
    explicit Program(const std::string& name, std::vector<std::string> args = {}) {
        std::string path = (samples_dir() / name).string();
        REQUIRE(std::filesystem::exists(path)); // build the samples (meson's -Dsamples=true)
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw std::system_error(errno, std::generic_category(), "pipe2");
        out_ = fds[0];
        args.insert(args.begin(), path);
        std::vector<char*> argv;
        for (std::string& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        // A clean signal state whatever this process blocks or ignores at the moment.
        posix_spawnattr_t attributes;
        posix_spawnattr_init(&attributes);
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        for (int s : {SIGINT, SIGTERM, SIGPIPE})
            sigaddset(&defaults, s);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setsigdefault(&attributes, &defaults);
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        int rc = posix_spawn(&pid_, path.c_str(), &actions, &attributes, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
        ::close(fds[1]);
        if (rc != 0)
            throw std::system_error(rc, std::generic_category(), "posix_spawn " + path);
    }
    Program(const Program&) = delete;
    Program& operator=(const Program&) = delete;
    ~Program() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
    }

    /// The next line of stdout (without '\n'); "" at end of output or after `timeout`.
    std::string read_line(std::chrono::milliseconds timeout = 10s) {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            if (auto nl = pending_.find('\n'); nl != std::string::npos) {
                std::string line = pending_.substr(0, nl);
                pending_.erase(0, nl + 1);
                return line;
            }
            if (!fill(deadline))
                return std::exchange(pending_, {});
        }
    }
    /// Everything the program still writes until it closes stdout (or `timeout`).
    std::string read_rest(std::chrono::milliseconds timeout = 30s) {
        auto deadline = Clock::now() + timeout;
        while (fill(deadline)) {
        }
        return std::exchange(pending_, {});
    }
    /// The exit code once it exits; -1 (after killing it) if that takes longer than `timeout`,
    /// 128 + N if signal N ended it.
    int wait(std::chrono::milliseconds timeout = 30s) {
        auto deadline = Clock::now() + timeout;
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0) {
            if (Clock::now() > deadline) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                pid_ = -1;
                return -1;
            }
            std::this_thread::sleep_for(5ms);
        }
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    void signal(int number) const { ::kill(pid_, number); }

  private:
    /// Reads what is available before `deadline`; false at end of output or on timeout.
    bool fill(Clock::time_point deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            return false;
        char buffer[4096];
        ssize_t n = ::read(out_, buffer, sizeof buffer);
        if (n <= 0)
            return false;
        pending_.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string pending_;
};

/// A port of 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
    ::close(fd);
    return ntohs(address.sin_port);
}

/// A blocking client socket connected to 127.0.0.1:`port`.
int connect_to(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        throw std::system_error(errno, std::generic_category(), "connect");
    return fd;
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("echo_demo verifies every echo of 100 clients and prints its table", "[samples]") {
    Program demo("echo_demo");
    std::string output = demo.read_rest();
    int code = demo.wait();
    INFO(output);
    CHECK(code == 0);
    CHECK_THAT(output, Catch::StartsWith("echo demo on 127.0.0.1:"));
    CHECK_THAT(output, Catch::Contains("  connections            100\n"));
    CHECK_THAT(output, Catch::Contains("  messages               500\n"));
    // "hello N\n" for N = 1..100, five times: 5 * (9 * 8 + 90 * 9 + 10) bytes.
    CHECK_THAT(output, Catch::Contains("  bytes verified        4460\n"));
    CHECK_THAT(output, Catch::Contains(" ms\n") && Catch::Contains("  msgs/s  "));
    CHECK_THAT(output, Catch::EndsWith("all echoes matched\n"));
}

TEST_CASE("echo_server serves echo_client on a given port and stops on SIGTERM printing the "
          "number of connections served",
          "[samples]") {
    const std::uint16_t port = free_port();
    Program server("echo_server", {std::to_string(port)});
    CHECK(server.read_line() == "echo server listening on 127.0.0.1:" + std::to_string(port));

    Program quiet("echo_client", {"--port", std::to_string(port), "--quiet", "--clients", "30"});
    std::string summary = quiet.read_rest();
    CHECK(quiet.wait() == 0);
    CHECK(summary == "30 of 30 clients connected, 150 of 150 echoes matched (1305 bytes): OK\n");

    Program chatty("echo_client", {"--port", std::to_string(port), "--clients", "3"});
    std::string echoes = chatty.read_rest();
    CHECK(chatty.wait() == 0);
    CHECK(count(echoes, "client   2: hello 2\n") == 5);
    CHECK(count(echoes, ": hello ") == 15);

    server.signal(SIGTERM);
    std::string rest = server.read_rest();
    CHECK(server.wait() == 0);
    CHECK(rest == "SIGTERM received: closing the listener\nserved 33 connections\n");
}

TEST_CASE("echo_server gives an open connection one second after SIGINT, then cancels it",
          "[samples]") {
    Program server("echo_server", {"0"});
    std::string banner = server.read_line();
    REQUIRE_THAT(banner, Catch::StartsWith("echo server listening on 127.0.0.1:"));
    auto port = static_cast<std::uint16_t>(std::stoi(banner.substr(banner.rfind(':') + 1)));

    int fd = connect_to(port);
    char echo[3] = {};
    REQUIRE(::write(fd, "hi\n", 3) == 3);
    REQUIRE(::recv(fd, echo, 3, MSG_WAITALL) == 3); // the server is serving this connection
    CHECK(std::string(echo, 3) == "hi\n");

    auto start = Clock::now();
    server.signal(SIGINT);
    std::string rest = server.read_rest();
    int code = server.wait();
    auto took = Clock::now() - start;
    char byte;
    ssize_t end = ::recv(fd, &byte, 1, 0); // the server closed the connection
    ::close(fd);
    CHECK(code == 0);
    CHECK(rest == "SIGINT received: closing the listener\n"
                  "1 connection(s) still open after 1 s: cancelling them\n"
                  "served 1 connections\n");
    CHECK(took >= 900ms);
    CHECK(took < 20s);
    CHECK(end == 0);
}

TEST_CASE("echo_client exits with 1 when its echoes cannot be verified", "[samples]") {
    const std::uint16_t port = free_port(); // nothing listens there
    Program client("echo_client", {"--port", std::to_string(port), "--clients", "3", "--quiet"});
    std::string summary = client.read_rest();
    CHECK(client.wait() == 1);
    CHECK(summary == "0 of 3 clients connected, 0 of 15 echoes matched (0 bytes): FAILED\n");
}

TEST_CASE("echo samples reject bad arguments with exit code 2", "[samples]") {
    Program server("echo_server", {"not-a-port"});
    CHECK(server.wait() == 2);
    Program client("echo_client", {"--clients", "0"});
    CHECK(client.wait() == 2);
}
