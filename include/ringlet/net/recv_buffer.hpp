// RecvBuffer: the bytes one StreamSocket::recv_buffer() received, in a buffer lent by the
// loop's receive pool (tokio-uring and Asio hand out buffers the same way). Destroying or
// resetting it gives the buffer back, so hold it only as long as the bytes are needed.
// Move-only; may outlive its loop and stream. Loop thread only.
#pragma once

#include "ringlet/detail/buffer_pool.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace ringlet {

class RecvBuffer {
  public:
    /// No bytes: what recv_buffer() yields at end of stream.
    RecvBuffer() noexcept = default;
    /// Takes lent buffer `id` of `pool` (and the caller's reference to the pool).
    RecvBuffer(detail::BufferPool* pool, std::uint32_t id, std::byte* data,
               std::uint32_t size) noexcept
        : pool_(pool), data_(data), id_(id), size_(size) {}
    RecvBuffer(RecvBuffer&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), data_(std::exchange(other.data_, nullptr)),
          id_(other.id_), size_(std::exchange(other.size_, 0)) {}
    RecvBuffer& operator=(RecvBuffer&& other) noexcept {
        if (this != &other) {
            reset();
            pool_ = std::exchange(other.pool_, nullptr);
            data_ = std::exchange(other.data_, nullptr);
            id_ = other.id_;
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    RecvBuffer(const RecvBuffer&) = delete;
    RecvBuffer& operator=(const RecvBuffer&) = delete;
    ~RecvBuffer() { reset(); }

    /// The bytes received (empty at end of stream or after reset()).
    std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    /// The bytes as characters.
    std::string_view text() const noexcept { return {reinterpret_cast<const char*>(data_), size_}; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    /// Gives the buffer back to the loop's pool now; the RecvBuffer becomes empty.
    void reset() noexcept {
        if (pool_ == nullptr)
            return;
        pool_->recycle(id_);
        std::exchange(pool_, nullptr)->release();
        data_ = nullptr;
        size_ = 0;
    }

  private:
    // 24 bytes: a waiting recv_buffer() and the task's copy both sit in the coroutine frame,
    // which each message touches (a buffer holds at most LoopOptions::recv_buffer_size bytes,
    // a uint32_t).
    detail::BufferPool* pool_ = nullptr;
    std::byte* data_ = nullptr;
    std::uint32_t id_ = 0;
    std::uint32_t size_ = 0;
};

} // namespace ringlet
