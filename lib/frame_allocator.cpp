// Frame allocator design: a segregated-fit allocator for coroutine frames. Size classes are 16
// bytes apart up to 512 B and 128 bytes apart up to 2 KiB; larger frames go to ::operator new.
// Each thread keeps one LIFO free list per class and carves new blocks out of a chunk with a
// bump pointer, so a block has no header and spawn + finish of a task is a list pop and push.
// Chunks come from a process-wide depot: the first ones are 64 KiB, then 2 MiB, aligned and
// advised for transparent huge pages, so that a burst of a million tasks pays one page fault
// per 2 MiB instead of one per 4 KiB. Memory is kept for reuse, as malloc keeps its arenas: a
// burst's frames serve the next burst without page faults. A thread that exits hands its free
// blocks to the depot, where other threads take them; a block freed on another thread than the
// one that allocated it joins that thread's list (any block fits any thread of its class).
// Under AddressSanitizer every frame is a plain ::operator new, so that ASan sees frame
// lifetimes exactly.
#include "ringlet/detail/frame_allocator.hpp"

#include <array>
#include <cstdint>
#include <mutex>
#include <new>
#include <sys/mman.h>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define RINGLET_FRAMES_FROM_OPERATOR_NEW 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGLET_FRAMES_FROM_OPERATOR_NEW 1
#endif
#endif

namespace ringlet::detail {

#ifdef RINGLET_FRAMES_FROM_OPERATOR_NEW

void* allocate_frame(std::size_t size) {
    return ::operator new(size);
}

void deallocate_frame(void* block, std::size_t) noexcept {
    ::operator delete(block);
}

bool frame_pooling() noexcept {
    return false;
}

#else

namespace {

constexpr std::size_t fine_step = 16;
constexpr std::size_t fine_limit = 512;
constexpr std::size_t coarse_step = 128;
constexpr std::size_t coarse_limit = 2048;
constexpr std::size_t class_count =
    fine_limit / fine_step + (coarse_limit - fine_limit) / coarse_step; // 32 + 12

constexpr std::size_t small_chunk = 64 * 1024;
constexpr std::size_t huge_chunk = 2 * 1024 * 1024;
constexpr std::size_t small_chunks_first = 16; // 1 MiB before the first huge-page chunk

constexpr std::size_t class_of(std::size_t size) noexcept {
    if (size <= fine_limit)
        return (size + fine_step - 1) / fine_step - 1;
    return fine_limit / fine_step + (size - fine_limit + coarse_step - 1) / coarse_step - 1;
}

constexpr std::size_t class_size(std::size_t c) noexcept {
    if (c < fine_limit / fine_step)
        return (c + 1) * fine_step;
    return fine_limit + (c + 1 - fine_limit / fine_step) * coarse_step;
}

static_assert(class_of(1) == 0 && class_of(16) == 0 && class_of(17) == 1);
static_assert(class_of(512) == 31 && class_of(513) == 32 && class_of(2048) == class_count - 1);
static_assert(class_size(class_of(2048)) == 2048 && class_size(class_of(100)) == 112);

struct FreeBlock {
    FreeBlock* next;
};

/// Process-wide: every chunk ever taken (kept for reuse, never unmapped) and the free blocks
/// of threads that exited.
class Depot {
  public:
    std::pair<std::byte*, std::size_t> new_chunk() {
        std::lock_guard lock(mutex_);
        std::size_t size = chunks_taken_ < small_chunks_first ? small_chunk : huge_chunk;
        void* memory = size == small_chunk ? ::operator new(size) : map_huge(size);
        ++chunks_taken_;
        chunks_.push_back(memory);
        return {static_cast<std::byte*>(memory), size};
    }

    /// Moves one list of free blocks of class `c` (given by an exited thread) to the caller;
    /// nullptr if there is none.
    FreeBlock* take(std::size_t c, std::size_t& count) {
        std::lock_guard lock(mutex_);
        if (lists_[c].empty())
            return nullptr;
        auto [head, n] = lists_[c].back();
        lists_[c].pop_back();
        count = n;
        return head;
    }

    /// Keeps a list of `count` free blocks of class `c` for other threads.
    void give(std::size_t c, FreeBlock* head, std::size_t count) {
        std::lock_guard lock(mutex_);
        lists_[c].emplace_back(head, count);
    }

  private:
    static void* map_huge(std::size_t size) {
        // Twice the size, then trimmed, for an address aligned to a huge page.
        void* raw =
            ::mmap(nullptr, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED)
            throw std::bad_alloc();
        auto start = reinterpret_cast<std::uintptr_t>(raw);
        std::uintptr_t aligned = (start + size - 1) & ~(size - 1);
        if (aligned > start)
            ::munmap(raw, aligned - start);
        if (std::uintptr_t end = start + 2 * size; end > aligned + size)
            ::munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
        // Advice only: without transparent huge pages the chunk is ordinary memory.
        ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
        return reinterpret_cast<void*>(aligned);
    }

    std::mutex mutex_;
    std::size_t chunks_taken_ = 0;
    std::vector<void*> chunks_;
    std::array<std::vector<std::pair<FreeBlock*, std::size_t>>, class_count> lists_;
};

// Never destroyed: frames may be freed by static destructors after every thread is gone.
Depot& depot() {
    static Depot* instance = new Depot();
    return *instance;
}

/// One thread's lists and the rest of its current chunk.
struct ThreadCache {
    std::array<FreeBlock*, class_count> heads{};
    std::array<std::size_t, class_count> counts{};
    std::byte* bump = nullptr;
    std::byte* bump_end = nullptr;
    bool alive = true; // false once the thread's destructors ran (static destructors may free)

    ~ThreadCache() {
        alive = false;
        // The uncarved rest of the chunk is cut into blocks of the smallest class.
        while (bump != nullptr && bump + class_size(0) <= bump_end) {
            heads[0] = new (bump) FreeBlock{heads[0]};
            ++counts[0];
            bump += class_size(0);
        }
        // The blocks stay in use by other threads through the depot.
        for (std::size_t c = 0; c < class_count; ++c)
            if (heads[c] != nullptr)
                depot().give(c, std::exchange(heads[c], nullptr), counts[c]);
    }

    void* refill(std::size_t c) {
        std::size_t count = 0;
        if (FreeBlock* blocks = depot().take(c, count)) {
            heads[c] = blocks->next;
            counts[c] = count - 1;
            return blocks;
        }
        std::size_t size = class_size(c);
        if (bump == nullptr || bump + size > bump_end) {
            // The tail of the old chunk, too small for this class, feeds the smallest one.
            while (bump != nullptr && bump + class_size(0) <= bump_end) {
                heads[0] = new (bump) FreeBlock{heads[0]};
                ++counts[0];
                bump += class_size(0);
            }
            auto [chunk, chunk_size] = depot().new_chunk();
            bump = chunk;
            bump_end = chunk + chunk_size;
        }
        void* block = bump;
        bump += size;
        return block;
    }
};

thread_local ThreadCache cache;

} // namespace

void* allocate_frame(std::size_t size) {
    std::size_t c = class_of(size);
    if (size == 0 || c >= class_count) [[unlikely]]
        return ::operator new(size);
    ThreadCache& local = cache;
    if (!local.alive) [[unlikely]]
        return ::operator new(class_size(c));
    if (FreeBlock* block = local.heads[c]) [[likely]] {
        local.heads[c] = block->next;
        --local.counts[c];
        return block;
    }
    return local.refill(c);
}

void deallocate_frame(void* block, std::size_t size) noexcept {
    std::size_t c = class_of(size);
    if (size == 0 || c >= class_count) [[unlikely]] {
        ::operator delete(block);
        return;
    }
    ThreadCache& local = cache;
    if (!local.alive) [[unlikely]] {
        depot().give(c, new (block) FreeBlock{nullptr}, 1);
        return;
    }
    local.heads[c] = new (block) FreeBlock{local.heads[c]};
    ++local.counts[c];
}

bool frame_pooling() noexcept {
    return true;
}

#endif

} // namespace ringlet::detail
