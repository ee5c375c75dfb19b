// BufferPool: the loop's receive buffers, handed to the kernel through a provided-buffer ring
// (io_uring_register_buf_ring, Linux 5.19+) so that a stream waiting for data parks no buffer
// of its own: the kernel picks one only when bytes arrive. Buffers live in chunks allocated on
// demand; the pool hands the kernel another chunk when a receive finds none (-ENOBUFS), up to
// LoopOptions::recv_buffer_count. "Spares" are buffers of the same size kept in user space for
// single-shot receives (kernels without the ring, or the ring exhausted).
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
    /// After -ENOBUFS, before the starved receive is re-armed: sees that the ring will hold a
    /// buffer for it, growing by a chunk only when this iteration's starved receives outnumber
    /// the buffers already added for them. False if the pool is at its maximum.
    bool replenish() noexcept {
        if (++starved_ <= added_for_starved_)
            return true;
        const std::uint32_t before = ring_buffers_;
        if (!grow())
            return false;
        added_for_starved_ += ring_buffers_ - before;
        return true;
    }
    /// The loop is about to enter the kernel: hands it the buffers recycled since the last call
    /// and starts a new count of starved receives.
    void before_kernel_entry() noexcept {
        starved_ = added_for_starved_ = 0;
        publish();
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
    void filled(std::uint32_t /*id*/) noexcept { ++lent_; }
    /// Gives buffer `id` back: to the kernel's ring (at the next publish()), or to the spares.
    void recycle(std::uint32_t id) noexcept {
        --lent_;
        if (id & spare_flag)
            return free_spare(id);
        if (buffer_ring_ == nullptr)
            return; // detached: the memory goes with the pool
        if (unpublished_ == max_unpublished)
            publish();
        unpublished_ids_[unpublished_++] = id;
    }
    /// Hands the kernel the ring buffers recycled since the last call: once per iteration
    /// (before_kernel_entry), so a message costs no store-release on the ring's tail of its own.
    void publish() noexcept;

    /// Buffers handed to the kernel so far (grows by chunks), for stats and tests.
    std::uint32_t ring_buffers() const noexcept { return ring_buffers_; }
    /// Buffers currently lent out (filled and not yet recycled, or spares taken).
    std::uint32_t lent() const noexcept { return lent_; }

  private:
    static constexpr std::uint32_t chunk_buffers = 64;
    static constexpr std::uint32_t spare_flag = 1u << 31;
    static constexpr std::uint32_t max_unpublished = 64;

    BufferPool(std::uint32_t buffer_size, std::uint32_t max_buffers) noexcept
        : buffer_size_(buffer_size), max_buffers_(max_buffers) {}
    ~BufferPool();
    void register_ring(io_uring* ring) noexcept;
    /// Hands the kernel another chunk. False if the pool is at its maximum.
    bool grow() noexcept;
    void free_spare(std::uint32_t id) noexcept;
    /// Hands ring buffers `ids[0..count)` to the kernel: writes them past the ring's tail, then
    /// moves the tail.
    void ring_add(const std::uint32_t* ids, std::uint32_t count) noexcept;
    static std::byte* ring_buffer(std::byte* const* chunks, std::uint32_t id,
                                  std::uint32_t buffer_size) noexcept {
        return chunks[id / chunk_buffers] + std::size_t{id % chunk_buffers} * buffer_size;
    }

    io_uring* ring_ = nullptr;
    io_uring_buf_ring* buffer_ring_ = nullptr;
    std::vector<std::byte*> chunks_; // ring buffers, chunk_buffers each
    std::vector<std::byte*> spares_; // spare buffers by index
    std::vector<std::uint32_t> free_spares_;
    std::uint32_t buffer_size_;
    std::uint32_t max_buffers_;
    std::uint32_t ring_buffers_ = 0;
    std::uint32_t lent_ = 0;
    std::uint32_t refs_ = 1;
    std::uint32_t unpublished_ = 0;
    // When the ring runs dry, every receive of that kernel pass starves at once; a chunk for
    // each would add 64 buffers per starved connection (a 50-connection server's pool grew to
    // 1,088 buffers, and a larger ring cycles the kernel's writes through more memory).
    std::uint32_t starved_ = 0;           // receives starved this iteration
    std::uint32_t added_for_starved_ = 0; // buffers added for them this iteration
    std::uint32_t unpublished_ids_[max_unpublished];
};

} // namespace ringlet::detail
