// File on io_uring. Every operation is an IoAwaiter whose state lives in the awaiting frame; the
// path given to IORING_OP_OPENAT lives in open()'s frame until the completion is reaped (the
// kernel copies it when the SQE is submitted, which happens on the loop's next iteration, not
// when it is prepared). -errno becomes std::system_error here, with the operation and the path.
#include "ringlet/file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <utility>

namespace ringlet {
namespace {

[[noreturn]] void throw_file_error(int err, const char* operation, const std::string& path) {
    throw std::system_error(err, std::generic_category(), std::string(operation) + " " + path);
}

class OpenAtAwaiter final : public detail::IoAwaiter<OpenAtAwaiter> {
  public:
    OpenAtAwaiter(const std::string& path, int flags, mode_t permissions) noexcept
        : path_(path), flags_(flags), permissions_(permissions) {}
    void prepare(detail::IoBackend& io, detail::IoOp& op) {
        io.openat(op, AT_FDCWD, path_.c_str(), flags_, permissions_);
    }
    std::string what_awaited() const override { return "open " + path_; }

  private:
    const std::string& path_;
    int flags_;
    mode_t permissions_;
};

class FsyncAwaiter final : public detail::IoAwaiter<FsyncAwaiter> {
  public:
    FsyncAwaiter(int fd, bool data_only, const std::string& path) noexcept
        : fd_(fd), data_only_(data_only), path_(path) {}
    void prepare(detail::IoBackend& io, detail::IoOp& op) { io.fsync(op, fd_, data_only_); }
    std::string what_awaited() const override { return "fsync " + path_; }

  private:
    int fd_;
    bool data_only_;
    const std::string& path_;
};

/// IORING_OP_CLOSE. If a pending cancellation keeps the request from being submitted at all,
/// the descriptor is closed synchronously before CancelledError propagates: close() promises
/// that the descriptor is released whatever happens.
class CloseAwaiter final : public detail::IoAwaiter<CloseAwaiter> {
  public:
    CloseAwaiter(int fd, const std::string& path) noexcept : fd_(fd), path_(path) {}
    void prepare(detail::IoBackend& io, detail::IoOp& op) { io.close(op, fd_); }
    std::int32_t await_resume() {
        if (cancelled_)
            ::close(fd_);
        return IoAwaiter<CloseAwaiter>::await_resume();
    }
    std::string what_awaited() const override { return "close " + path_; }

  private:
    int fd_;
    const std::string& path_;
};

/// Translates a Python-style mode ("r", "w+", "ab", "r+b"...) to open(2) flags.
int flags_for_mode(std::string_view mode) {
    std::string m(mode);
    if (auto b = m.find('b'); b != std::string::npos && b > 0)
        m.erase(b, 1); // files are always binary
    int flags = -1;
    if (m == "r")
        flags = O_RDONLY;
    else if (m == "r+")
        flags = O_RDWR;
    else if (m == "w")
        flags = O_WRONLY | O_CREAT | O_TRUNC;
    else if (m == "w+")
        flags = O_RDWR | O_CREAT | O_TRUNC;
    else if (m == "a")
        flags = O_WRONLY | O_CREAT | O_APPEND;
    else if (m == "a+")
        flags = O_RDWR | O_CREAT | O_APPEND;
    else if (m == "x")
        flags = O_WRONLY | O_CREAT | O_EXCL;
    else if (m == "x+")
        flags = O_RDWR | O_CREAT | O_EXCL;
    if (flags < 0)
        throw std::invalid_argument("ringlet::File::open: unknown mode \"" + std::string(mode) +
                                    "\" (expected r, r+, w, w+, a, a+, x or x+)");
    return flags;
}

} // namespace

std::size_t File::ReadAwaiter::await_resume() {
    std::int32_t result = IoAwaiter<ReadAwaiter>::await_resume();
    if (result < 0)
        throw_file_error(-result, "read", file_->path_);
    return static_cast<std::size_t>(result);
}

std::size_t File::WriteAwaiter::await_resume() {
    std::int32_t result = IoAwaiter<WriteAwaiter>::await_resume();
    if (result < 0)
        throw_file_error(-result, "write", file_->path_);
    return static_cast<std::size_t>(result);
}

File::File(File&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {
}

File& File::operator=(File&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

File::~File() {
    if (fd_ >= 0)
        ::close(fd_);
}

Task<File> File::open(std::string path, int flags, mode_t permissions) {
    OpenAtAwaiter opening(path, flags | O_CLOEXEC, permissions);
    std::int32_t fd = co_await opening;
    if (fd < 0)
        throw_file_error(-fd, "open", path);
    co_return File(fd, std::move(path));
}

Task<File> File::open(std::string path, std::string_view mode) {
    // Not a coroutine: a bad mode throws at the call, not at the co_await.
    return open(std::move(path), flags_for_mode(mode), 0644);
}

void File::check_open(const char* operation) const {
    if (fd_ < 0)
        throw std::logic_error(std::string(operation) + " on a closed ringlet::File" +
                               (path_.empty() ? std::string() : " (" + path_ + ")"));
}

File::ReadAwaiter File::read_at(std::span<std::byte> buffer, std::uint64_t offset) const {
    check_open("read_at");
    return ReadAwaiter(*this, buffer, offset);
}

File::WriteAwaiter File::write_at(std::span<const std::byte> buffer, std::uint64_t offset) const {
    check_open("write_at");
    return WriteAwaiter(*this, buffer, offset);
}

Task<> File::write_all_at(std::span<const std::byte> buffer, std::uint64_t offset) const {
    while (!buffer.empty()) {
        WriteAwaiter writing = write_at(buffer, offset);
        std::size_t written = co_await writing;
        if (written == 0) // a regular file never does this; a full device gives ENOSPC
            throw_file_error(EIO, "write", path_);
        buffer = buffer.subspan(written);
        offset += written;
    }
}

Task<> File::sync(bool data_only) const {
    FsyncAwaiter syncing(fd_, data_only, path_);
    std::int32_t result = co_await syncing;
    if (result < 0)
        throw_file_error(-result, data_only ? "fdatasync" : "fsync", path_);
}

// Not coroutines: using a closed File throws at the call.
Task<> File::fsync() const {
    check_open("fsync");
    return sync(false);
}

Task<> File::fdatasync() const {
    check_open("fdatasync");
    return sync(true);
}

Task<> File::close() {
    if (fd_ < 0)
        co_return;
    CloseAwaiter closing(std::exchange(fd_, -1), path_);
    std::int32_t result = co_await closing;
    if (result < 0)
        throw_file_error(-result, "close", path_);
}

std::uint64_t File::size() const {
    check_open("size");
    struct stat st {};
    if (::fstat(fd_, &st) != 0)
        throw_file_error(errno, "fstat", path_);
    return static_cast<std::uint64_t>(st.st_size);
}

} // namespace ringlet
