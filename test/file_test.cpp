// Tests of File on io_uring: positional write/fsync/read round trips, short reads at end of
// file, append mode, error messages naming the operation and the path, misuse of a closed File,
// and descriptor ownership (destructor, move, close under a pending cancellation).
#include "support.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <ringlet/file.hpp>
#include <span>
#include <string>
#include <system_error>
#include <unistd.h>

namespace {

using namespace ringlet::test;
using ringlet::File;
using ringlet::Task;

/// A fresh directory under /tmp, removed with its contents at the end of the test.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "ringlet-file-XXXXXX");
        if (::mkdtemp(pattern.data()) == nullptr)
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        path_ = pattern;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    std::string file(const char* name) const { return (path_ / name).string(); }

  private:
    std::filesystem::path path_;
};

std::string as_text(std::span<const std::byte> bytes) {
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

bool fd_is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

} // namespace

TEST_CASE("File write_all_at, fsync and read_at round-trip bytes at their offsets", "[file]") {
    TempDir dir;
    std::string path = dir.file("data.bin");
    struct Seen {
        std::size_t short_write = 0;
        std::uint64_t size = 0;
        std::string whole;
        std::string reopened;
    } seen;
    run_virtual([](std::string path, Seen& s) -> Task<> {
        File file = co_await File::open(path, "w+");
        REQUIRE(file.is_open());
        CHECK(file.path() == path);
        co_await file.write_all_at("hello world", 0);
        s.short_write = co_await file.write_at("XY", 20); // leaves a hole of zeros
        co_await file.fsync();
        co_await file.fdatasync();
        s.size = file.size();
        std::array<std::byte, 64> buffer{};
        std::size_t n = co_await file.read_at(buffer, 0);
        s.whole = as_text(std::span(buffer).first(n));
        co_await file.close();
        CHECK_FALSE(file.is_open());

        File again = co_await File::open(path, O_RDONLY);
        std::array<std::byte, 5> word{};
        std::size_t m = co_await again.read_at(word, 6);
        s.reopened = as_text(std::span(word).first(m));
    }(path, seen));
    CHECK(seen.short_write == 2);
    CHECK(seen.size == 22);
    CHECK(seen.whole == std::string("hello world") + std::string(9, '\0') + "XY");
    CHECK(seen.reopened == "world");
}

TEST_CASE("File read_at returns a short count near the end and 0 past it", "[file]") {
    TempDir dir;
    std::string path = dir.file("short.txt");
    std::size_t near_end = 99, past_end = 99;
    run_virtual([](std::string path, std::size_t& near, std::size_t& past) -> Task<> {
        File file = co_await File::open(path, "w+");
        co_await file.write_all_at("0123456789", 0);
        std::array<std::byte, 8> buffer{};
        near = co_await file.read_at(buffer, 6);
        past = co_await file.read_at(buffer, 10);
    }(path, near_end, past_end));
    CHECK(near_end == 4);
    CHECK(past_end == 0);
}

TEST_CASE("File opened in append mode appends whatever the offset", "[file]") {
    TempDir dir;
    std::string path = dir.file("log.txt");
    std::string contents;
    run_virtual([](std::string path, std::string& out) -> Task<> {
        {
            File file = co_await File::open(path, "w");
            co_await file.write_all_at("first\n", 0);
        }
        File log = co_await File::open(path, "ab");
        co_await log.write_all_at("second\n", 0);
        co_await log.close();
        File reader = co_await File::open(path);
        std::array<std::byte, 32> buffer{};
        std::size_t n = co_await reader.read_at(buffer, 0);
        out = as_text(std::span(buffer).first(n));
    }(path, contents));
    CHECK(contents == "first\nsecond\n");
}

TEST_CASE("File::open of a missing path throws system_error naming the path", "[file]") {
    std::string message;
    int code = 0;
    run_virtual([](std::string& what, int& err) -> Task<> {
        try {
            File file = co_await File::open("/no/such", "r");
        } catch (const std::system_error& e) {
            what = e.what();
            err = e.code().value();
        }
    }(message, code));
    CHECK(message == "open /no/such: No such file or directory");
    CHECK(code == ENOENT);
}

TEST_CASE("File::open in exclusive mode fails on an existing file with EEXIST", "[file]") {
    TempDir dir;
    std::string path = dir.file("exists");
    int code = 0;
    std::string message;
    run_virtual([](std::string path, int& err, std::string& what) -> Task<> {
        File created = co_await File::open(path, "x");
        try {
            File again = co_await File::open(path, "x+");
        } catch (const std::system_error& e) {
            err = e.code().value();
            what = e.what();
        }
    }(path, code, message));
    CHECK(code == EEXIST);
    CHECK(message == "open " + path + ": File exists");
}

TEST_CASE("File::open rejects an unknown mode at the call", "[file]") {
    CHECK_THROWS_WITH(File::open("/tmp/x", "rw"),
                      Catch::Contains("unknown mode \"rw\"", Catch::CaseSensitive::Yes));
    CHECK_THROWS_AS(File::open("/tmp/x", ""), std::invalid_argument);
}

TEST_CASE("File write_at on a read-only File throws system_error naming the path", "[file]") {
    TempDir dir;
    std::string path = dir.file("ro.txt");
    std::string message;
    int code = 0;
    run_virtual([](std::string path, std::string& what, int& err) -> Task<> {
        { File file = co_await File::open(path, "w"); }
        File ro = co_await File::open(path, "r");
        try {
            std::size_t n = co_await ro.write_at("data", 0);
            FAIL("write_at on a read-only file returned " << n);
        } catch (const std::system_error& e) {
            what = e.what();
            err = e.code().value();
        }
    }(path, message, code));
    CHECK(code == EBADF);
    CHECK(message == "write " + path + ": Bad file descriptor");
}

TEST_CASE("A closed File throws logic_error on use and close is idempotent", "[file]") {
    TempDir dir;
    std::string path = dir.file("closed.txt");
    run_virtual([](std::string path) -> Task<> {
        File file = co_await File::open(path, "w+");
        co_await file.close();
        co_await file.close();
        std::array<std::byte, 4> buffer{};
        CHECK_THROWS_WITH(file.read_at(buffer, 0),
                          Catch::Contains("read_at on a closed ringlet::File"));
        CHECK_THROWS_AS(file.write_at("x", 0), std::logic_error);
        CHECK_THROWS_AS(file.fsync(), std::logic_error);
        CHECK_THROWS_AS(file.size(), std::logic_error);
        File empty;
        CHECK_FALSE(empty.is_open());
        CHECK_THROWS_AS(empty.read_at(buffer, 0), std::logic_error);
    }(path));
}

TEST_CASE("File owns its descriptor: a move transfers it and the destructor closes it", "[file]") {
    TempDir dir;
    std::string path = dir.file("owned.txt");
    int fd = -1;
    bool open_after_move = false;
    bool moved_from_open = true;
    run_virtual([](std::string path, int& fd, bool& after_move, bool& from_open) -> Task<> {
        File file = co_await File::open(path, "w");
        fd = file.fd();
        File other = std::move(file);
        from_open = file.is_open();
        after_move = other.fd() == fd && fd_is_open(fd);
    }(path, fd, open_after_move, moved_from_open));
    CHECK(open_after_move);
    CHECK_FALSE(moved_from_open);
    CHECK_FALSE(fd_is_open(fd));
}

TEST_CASE("File close with a pending cancellation still releases the descriptor", "[file]") {
    TempDir dir;
    std::string path = dir.file("cancelled.txt");
    int fd = -1;
    bool cancelled = false;
    run_virtual([](std::string path, int& fd, bool& cancelled) -> Task<> {
        File file = co_await File::open(path, "w");
        fd = file.fd();
        ringlet::current_task().cancel(); // raised at close()'s suspension point
        try {
            co_await file.close();
        } catch (const ringlet::CancelledError&) {
            cancelled = true;
        }
        CHECK_FALSE(file.is_open());
    }(path, fd, cancelled));
    CHECK(cancelled);
    CHECK_FALSE(fd_is_open(fd));
}

TEST_CASE("File::open cancelled before it is submitted opens nothing", "[file]") {
    TempDir dir;
    std::string path = dir.file("never.txt");
    bool cancelled = false;
    run_virtual([](std::string path, bool& cancelled) -> Task<> {
        ringlet::current_task().cancel();
        try {
            File file = co_await File::open(path, "w");
        } catch (const ringlet::CancelledError&) {
            cancelled = true;
        }
    }(path, cancelled));
    CHECK(cancelled);
    CHECK_FALSE(std::filesystem::exists(path));
}
