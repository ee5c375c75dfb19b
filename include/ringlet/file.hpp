// File: a regular file whose open, positional reads and writes, fsync and close all go through
// the loop's io_uring (IORING_OP_OPENAT, READ, WRITE, FSYNC, CLOSE), so that a slow disk never
// blocks the loop. A File is a move-only owner of one descriptor; its destructor closes it.
// Thread safety: loop thread only. Lifetime: a File must outlive the operations started on it.
#pragma once

#include "ringlet/detail/io_awaiter.hpp"
#include "ringlet/task.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ringlet {

class File {
  public:
    /// The awaiter of read_at(): yields the number of bytes read, 0 at end of file.
    class ReadAwaiter final : public detail::IoAwaiter<ReadAwaiter> {
      public:
        ReadAwaiter(const File& file, std::span<std::byte> buffer, std::uint64_t offset) noexcept
            : file_(&file), buffer_(buffer), offset_(offset) {}
        void prepare(detail::IoBackend& io, detail::IoOp& op) {
            io.read(op, file_->fd_, buffer_, offset_);
        }
        std::size_t await_resume();
        std::string what_awaited() const override { return "read " + file_->path_; }

      private:
        const File* file_;
        std::span<std::byte> buffer_;
        std::uint64_t offset_;
    };

    /// The awaiter of write_at(): yields the number of bytes written (possibly short).
    class WriteAwaiter final : public detail::IoAwaiter<WriteAwaiter> {
      public:
        WriteAwaiter(const File& file, std::span<const std::byte> buffer,
                     std::uint64_t offset) noexcept
            : file_(&file), buffer_(buffer), offset_(offset) {}
        void prepare(detail::IoBackend& io, detail::IoOp& op) {
            io.write(op, file_->fd_, buffer_, offset_);
        }
        std::size_t await_resume();
        std::string what_awaited() const override { return "write " + file_->path_; }

      private:
        const File* file_;
        std::span<const std::byte> buffer_;
        std::uint64_t offset_;
    };

    /// An empty File (is_open() is false).
    File() noexcept = default;
    File(File&& other) noexcept;
    File& operator=(File&& other) noexcept;
    File(const File&) = delete;
    File& operator=(const File&) = delete;
    /// Closes the descriptor (synchronously) if close() was not awaited.
    ~File();

    /// Opens `path` with open(2) flags (O_CLOEXEC is always added) through IORING_OP_OPENAT.
    /// Throws: std::system_error naming the path ("open /no/such: No such file or directory").
    /// Cancellation: if the open completed anyway, the File is returned and the cancellation
    /// stays pending for the next suspension point (no descriptor leaks).
    static Task<File> open(std::string path, int flags, mode_t permissions = 0644);
    /// Opens `path` with a Python-style mode: "r", "r+", "w", "w+", "a", "a+", "x", "x+" (a
    /// trailing "b" is accepted and ignored; files are always binary).
    /// Throws: std::invalid_argument naming an unknown mode (at the call); as above.
    static Task<File> open(std::string path, std::string_view mode = "r");

    /// Reads up to `buffer.size()` bytes at `offset` (pread); 0 means end of file.
    /// Throws: std::system_error ("read PATH: ..."); std::logic_error if the File is closed.
    /// Lifetime: `buffer` must stay valid until the read completes; a cancellation waits for
    /// the kernel's completion. Cancellation: a read that completed is delivered.
    [[nodiscard]] ReadAwaiter read_at(std::span<std::byte> buffer, std::uint64_t offset) const;
    /// Writes up to `buffer.size()` bytes at `offset` (pwrite; in append mode the kernel
    /// appends whatever the offset). Returns the count written, which may be short.
    /// Throws: std::system_error ("write PATH: ..."); std::logic_error if the File is closed.
    /// Lifetime: `buffer` must stay valid until the write completes, cancellation included.
    [[nodiscard]] WriteAwaiter write_at(std::span<const std::byte> buffer,
                                        std::uint64_t offset) const;
    [[nodiscard]] WriteAwaiter write_at(std::string_view text, std::uint64_t offset) const {
        return write_at(std::as_bytes(std::span(text)), offset);
    }
    /// Writes all of `buffer` at `offset`, repeating short writes.
    /// Throws: as write_at(). Lifetime: `buffer` must outlive the returned Task's completion.
    /// Cancellation: the bytes written before the cancellation stay written.
    Task<> write_all_at(std::span<const std::byte> buffer, std::uint64_t offset) const;
    Task<> write_all_at(std::string_view text, std::uint64_t offset) const {
        return write_all_at(std::as_bytes(std::span(text)), offset);
    }
    /// Flushes the file's data and metadata to the device (fsync(2)).
    /// Throws: std::system_error ("fsync PATH: ..."); std::logic_error if the File is closed.
    Task<> fsync() const;
    /// Flushes the data and only the metadata needed to read it back (fdatasync(2)).
    Task<> fdatasync() const;
    /// Closes the descriptor through the ring; afterwards is_open() is false. Idempotent.
    /// Throws: std::system_error ("close PATH: ..."); the descriptor is released even then.
    /// Cancellation: the descriptor is closed all the same.
    Task<> close();

    /// The current size in bytes (fstat(2), synchronous: it never waits for the device).
    /// Throws: std::system_error; std::logic_error if the File is closed.
    std::uint64_t size() const;
    bool is_open() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    /// The path the File was opened with (used in error messages).
    const std::string& path() const noexcept { return path_; }

  private:
    File(int fd, std::string path) noexcept : fd_(fd), path_(std::move(path)) {}
    void check_open(const char* operation) const;
    Task<> sync(bool data_only) const;

    int fd_ = -1;
    std::string path_;
};

} // namespace ringlet
