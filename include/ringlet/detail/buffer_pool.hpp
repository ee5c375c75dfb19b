// BufferPool: the loop's receive buffers, handed to the kernel through a provided-buffer ring
// (io_uring_register_buf_ring, Linux 5.19+) so that a stream waiting for data parks no buffer
// of its own: the kernel picks one only when bytes arrive. Buffers live in chunks allocated on
// demand; the pool adds a chunk when receives find none (-ENOBUFS), up to
// LoopOptions::recv_buffer_count. The ring holds only about twice what a kernel pass takes;
// the other free buffers wait in a stack, so the kernel writes into recently used (cached)
// memory. "Spares" are buffers of the same size kept in user space for single-shot receives
// (kernels without the ring, or the ring exhausted).
// Reference counted: the loop's backend, each RecvChannel and each RecvBuffer hold one, so a
// RecvBuffer may outlive its loop (the pool is then detached from the ring and only frees).
// Loop thread only. Design notes in lib/buffer_pool.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct io_uring;
struct io_uring_buf_ring;

namespace ringlet::detail {

class BufferPool {
  public:
    /// The buffer group id of the ring's buffers in SQEs (IOSQE_BUFFER_SELECT).
    static constexpr std::uint16_t group = 0;

    /// A pool of `buffer_size`-byte buffers; with `ring` non-null, registers a buffer ring of
    /// `max_buffers` entries (a power of two, at most 32768) on it, and falls back to spares
    /// only if the kernel refuses. Returns it with one reference.
    /// Throws: std::invalid_argument naming a bad size or count.
    static BufferPool* create(io_uring* ring, std::uint32_t buffer_size, std::uint32_t max_buffers);

    /// Throws std::invalid_argument naming a bad LoopOptions::recv_buffer_size or
    /// recv_buffer_count (the loop checks them at construction).
    static void check_options(std::uint32_t buffer_size, std::uint32_t max_buffers);

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0)
            delete this;
    }

    /// The kernel picks buffers from this pool (multishot receives can use it).
    bool has_ring() const noexcept { return buffer_ring_ != nullptr; }
    /// After -ENOBUFS, before the starved receive is re-armed: the ring ran dry, so it keeps one
    /// more buffer from now on, and the pool grows by a chunk if its free buffers fall short of
    /// that. False if no buffer is free and the pool is at its maximum.
    bool replenish() noexcept;
    /// The loop is about to enter the kernel: fills the ring up to its target from the most
    /// recently freed buffers. Once per iteration, so a message costs no store-release on the
    /// ring's tail of its own.
    void before_kernel_entry() noexcept {
        if (taken_ > peak_taken_)
            peak_taken_ = taken_;
        if (2 * taken_ > target_)
            raise_target(2 * taken_);
        taken_ = 0;
        if (--window_left_ == 0)
            end_window();
        top_up();
    }
    /// The ring is going away (loop close): unregisters; buffers still lent stay readable.
    void detach() noexcept;

    std::uint32_t buffer_size() const noexcept { return buffer_size_; }
    std::byte* data(std::uint32_t id) const noexcept {
        if (id & spare_flag)
            return spares_[id & ~spare_flag];
        return ring_buffer(chunks_.data(), id, buffer_size_);
    }
    /// A user-space buffer for one single-shot receive (allocated when none is free).
    /// Throws: std::bad_alloc.
    std::uint32_t take_spare();
    /// A receive completed into ring buffer `id`: it is lent until recycled.
    void filled(std::uint32_t /*id*/) noexcept {
        ++lent_;
        ++taken_;
        in_ring_ -= in_ring_ > 0;
    }
    /// Gives buffer `id` back: to the top of the free stack (the ring takes it at the next
    /// kernel entry if it needs one), or to the spares.
    void recycle(std::uint32_t id) noexcept {
        --lent_;
        if (id & spare_flag)
            return free_spare(id);
        if (buffer_ring_ == nullptr)
            return; // detached: the memory goes with the pool
        // Capacity reserved by grow(): no allocation.
        free_.push_back(id);
    }

    /// Buffers created for the ring so far (grows by chunks), for stats and tests.
    std::uint32_t ring_buffers() const noexcept { return ring_buffers_; }
    /// Buffers currently lent out (filled and not yet recycled, or spares taken).
    std::uint32_t lent() const noexcept { return lent_; }

  private:
    static constexpr std::uint32_t chunk_buffers = 64;
    static constexpr std::uint32_t spare_flag = 1u << 31;
    static constexpr std::uint32_t min_target = 4;
    static constexpr std::uint32_t window = 64; // iterations between lowerings of the target

    BufferPool(std::uint32_t buffer_size, std::uint32_t max_buffers) noexcept
        : buffer_size_(buffer_size), max_buffers_(max_buffers) {}
    ~BufferPool();
    void register_ring(io_uring* ring) noexcept;
    /// Adds a chunk of buffers to the free stack, then tops the ring up. False if the pool is
    /// at its maximum.
    bool grow() noexcept;
    void free_spare(std::uint32_t id) noexcept;
    void raise_target(std::uint32_t wanted) noexcept;
    void end_window() noexcept;
    /// Moves buffers from the top of the free stack into the ring until it holds target_ (or
    /// the stack is empty). Inline: the loop calls it every iteration, and mostly it is full.
    void top_up() noexcept {
        if (in_ring_ < target_ && !free_.empty())
            fill_ring();
    }
    /// top_up()'s work: writes the buffers past the ring's tail, then moves the tail.
    void fill_ring() noexcept;
    static std::byte* ring_buffer(std::byte* const* chunks, std::uint32_t id,
                                  std::uint32_t buffer_size) noexcept {
        return chunks[id / chunk_buffers] + std::size_t{id % chunk_buffers} * buffer_size;
    }

    io_uring* ring_ = nullptr;
    io_uring_buf_ring* buffer_ring_ = nullptr;
    std::vector<std::byte*> chunks_;  // ring buffers, chunk_buffers each
    std::vector<std::uint32_t> free_; // free ring buffers not in the ring; last freed on top
    std::vector<std::byte*> spares_;  // spare buffers by index
    std::vector<std::uint32_t> free_spares_;
    std::uint32_t buffer_size_;
    std::uint32_t max_buffers_;
    std::uint32_t ring_buffers_ = 0;
    std::uint32_t lent_ = 0;
    std::uint32_t refs_ = 1;
    std::uint32_t in_ring_ = 0;    // handed to the ring and not yet seen filled
    std::uint32_t target_ = 0;     // what top_up() fills the ring to
    std::uint32_t taken_ = 0;      // buffers filled since the last kernel entry
    std::uint32_t peak_taken_ = 0; // the most taken between two entries in this window
    std::uint32_t window_left_ = window;
};

} // namespace ringlet::detail
