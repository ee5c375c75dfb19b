// BufferPool design: buffer ids below spare_flag are ring buffers, id i living in chunk
// i / chunk_buffers; the kernel names them in CQEs (flags >> IORING_CQE_BUFFER_SHIFT). Ids with
// spare_flag set are user-space spares. Chunks are allocated on demand and never shrink: their
// pages are touched only where the kernel writes, so an idle loop costs the ring's entries
// plus the first chunk's address space.
// Why the ring holds only part of the free buffers: the kernel takes buffers in ring order, so
// with every free buffer in the ring each receive lands in the one freed longest ago, cycling
// its writes through the whole pool (1-2 MiB at 16 KiB a buffer, as much as a core's L2). Freed
// buffers go on a stack instead, and before each kernel entry the ring is filled up to a target
// from its top: about twice the most one pass took recently (raised at once when a pass takes
// more, or a receive starves; lowered once per window of 64 iterations). In the echo benchmark
// at 50 x 16 KiB the kernel's receives then land in a few hundred KiB that are still cached.
// in_ring_ counts what was handed to the ring and not yet seen filled; the kernel may have
// taken more (completions not yet reaped), never less, so top_up() cannot overwrite an entry
// the kernel has not consumed: it keeps at most target_ <= max_buffers_ (the ring's entries).
// With DEFER_TASKRUN the kernel takes buffers only inside io_uring_enter, after the top-up.
// Without it, a receive can run at another system call and find the ring short; it then
// starves (-ENOBUFS), which raises the target, as when every buffer is lent.
#include "ringlet/detail/buffer_pool.hpp"

#include <algorithm>
#include <cstdlib>
#include <liburing.h>
#include <new>
#include <stdexcept>
#include <string>
#include <sys/mman.h>

namespace ringlet::detail {

namespace {

std::byte* allocate_pages(std::size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        throw std::bad_alloc();
    return static_cast<std::byte*>(p);
}

} // namespace

void BufferPool::check_options(std::uint32_t buffer_size, std::uint32_t max_buffers) {
    if (buffer_size == 0 || buffer_size > (1u << 30))
        throw std::invalid_argument("LoopOptions::recv_buffer_size " + std::to_string(buffer_size) +
                                    ": expected 1 to 2^30 bytes");
    if (max_buffers == 0 || max_buffers > 32768 || (max_buffers & (max_buffers - 1)) != 0)
        throw std::invalid_argument("LoopOptions::recv_buffer_count " +
                                    std::to_string(max_buffers) +
                                    ": expected a power of two from 1 to 32768");
}

BufferPool* BufferPool::create(io_uring* ring, std::uint32_t buffer_size,
                               std::uint32_t max_buffers) {
    check_options(buffer_size, max_buffers);
    auto* pool = new BufferPool(buffer_size, max_buffers);
    if (ring != nullptr)
        pool->register_ring(ring);
    return pool;
}

void BufferPool::register_ring(io_uring* ring) noexcept {
    const std::size_t bytes = max_buffers_ * sizeof(io_uring_buf);
    void* memory =
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        return; // spares only
    auto* buffer_ring = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_ring_init(buffer_ring);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(buffer_ring);
    reg.ring_entries = max_buffers_;
    reg.bgid = group;
    if (io_uring_register_buf_ring(ring, &reg, 0) != 0) {
        ::munmap(memory, bytes); // kernel before 5.19: single-shot receives into spares
        return;
    }
    ring_ = ring;
    buffer_ring_ = buffer_ring;
    target_ = std::min(chunk_buffers, max_buffers_); // lowered once passes are seen
    if (!grow())
        detach();
}

BufferPool::~BufferPool() {
    detach();
    const std::size_t chunk_bytes = std::size_t{chunk_buffers} * buffer_size_;
    for (std::byte* chunk : chunks_)
        ::munmap(chunk, chunk_bytes);
    for (std::byte* spare : spares_)
        std::free(spare);
}

void BufferPool::detach() noexcept {
    if (buffer_ring_ == nullptr)
        return;
    free_.clear();
    in_ring_ = 0;
    io_uring_unregister_buf_ring(ring_, group);
    ::munmap(buffer_ring_, max_buffers_ * sizeof(io_uring_buf));
    buffer_ring_ = nullptr;
    ring_ = nullptr;
}

void BufferPool::fill_ring() noexcept {
    // Not io_uring_buf_ring_add() per buffer: it reloads the ring's tail for every entry (the
    // tail shares memory with the first entry), and the member reads would be reloaded too (an
    // entry's uint32_t length may alias buffer_size_). Read once here.
    const std::uint32_t count =
        std::min(target_ - in_ring_, static_cast<std::uint32_t>(free_.size()));
    io_uring_buf_ring* const ring = buffer_ring_;
    const std::uint16_t tail = ring->tail;
    const std::uint32_t mask = max_buffers_ - 1;
    const std::uint32_t size = buffer_size_;
    std::byte* const* const chunks = chunks_.data();
    const std::uint32_t* const top = free_.data() + free_.size() - 1;
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::uint32_t id = top[-static_cast<std::ptrdiff_t>(i)]; // the last freed first
        io_uring_buf& entry = ring->bufs[(tail + i) & mask];
        entry.addr = reinterpret_cast<std::uint64_t>(ring_buffer(chunks, id, size));
        entry.len = size;
        entry.bid = static_cast<std::uint16_t>(id);
    }
    io_uring_buf_ring_advance(ring, static_cast<int>(count));
    free_.resize(free_.size() - count);
    in_ring_ += count;
}

void BufferPool::raise_target(std::uint32_t wanted) noexcept {
    target_ = std::min(wanted, max_buffers_);
}

void BufferPool::end_window() noexcept {
    const std::uint32_t wanted = std::max(2 * peak_taken_, min_target);
    if (wanted < target_)
        target_ = wanted;
    peak_taken_ = 0;
    window_left_ = window;
}

bool BufferPool::replenish() noexcept {
    if (buffer_ring_ == nullptr)
        return false;
    raise_target(target_ + 1);
    if (free_.size() + in_ring_ >= target_ || grow())
        return true;
    return !free_.empty();
}

bool BufferPool::grow() noexcept {
    if (buffer_ring_ == nullptr || ring_buffers_ >= max_buffers_)
        return false;
    const std::uint32_t count = std::min(chunk_buffers, max_buffers_ - ring_buffers_);
    try {
        chunks_.reserve(chunks_.size() + 1);
        free_.reserve(ring_buffers_ + count); // recycle() must not allocate
        chunks_.push_back(allocate_pages(std::size_t{chunk_buffers} * buffer_size_));
    } catch (const std::bad_alloc&) {
        return false;
    }
    // Pushed highest id first, so that the chunk's first buffers are on top.
    for (std::uint32_t i = count; i-- > 0;)
        free_.push_back(ring_buffers_ + i);
    ring_buffers_ += count;
    top_up();
    return true;
}

std::uint32_t BufferPool::take_spare() {
    std::uint32_t id;
    if (!free_spares_.empty()) {
        id = free_spares_.back();
        free_spares_.pop_back();
    } else {
        free_spares_.reserve(spares_.size() + 1); // recycle() must not allocate
        void* p = std::malloc(buffer_size_);
        if (p == nullptr)
            throw std::bad_alloc();
        id = static_cast<std::uint32_t>(spares_.size()) | spare_flag;
        try {
            spares_.push_back(static_cast<std::byte*>(p));
        } catch (...) {
            std::free(p);
            throw;
        }
    }
    ++lent_;
    return id;
}

void BufferPool::free_spare(std::uint32_t id) noexcept {
    free_spares_.push_back(id); // capacity reserved by take_spare
}

} // namespace ringlet::detail
