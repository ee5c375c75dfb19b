// Frame allocator design: blocks are grouped in size classes of 64 bytes up to 1 KiB; each
// thread keeps one LIFO free list per class, capped so that a burst of a million tasks does not
// pin its memory forever. Larger frames go straight to ::operator new. A block's size class is
// recomputed from the size the compiler passes to operator delete, so blocks carry no header.
#include "ringlet/detail/frame_allocator.hpp"

#include <array>
#include <new>
#include <utility>

namespace ringlet::detail {
namespace {

constexpr std::size_t class_granularity = 64;
constexpr std::size_t class_count = 16; // up to 1 KiB
constexpr std::size_t max_cached_per_class = 1 << 16;

struct FreeBlock {
    FreeBlock* next;
};

struct FreeLists {
    std::array<FreeBlock*, class_count> heads{};
    std::array<std::size_t, class_count> counts{};

    ~FreeLists() {
        for (FreeBlock*& head : heads)
            while (head != nullptr)
                ::operator delete(std::exchange(head, head->next));
    }
};

thread_local FreeLists free_lists;

constexpr std::size_t class_of(std::size_t size) noexcept {
    return (size + class_granularity - 1) / class_granularity - 1;
}

} // namespace

void* allocate_frame(std::size_t size) {
    std::size_t c = class_of(size);
    if (size == 0 || c >= class_count)
        return ::operator new(size);
    FreeLists& lists = free_lists;
    if (FreeBlock* block = lists.heads[c]) {
        lists.heads[c] = block->next;
        --lists.counts[c];
        return block;
    }
    return ::operator new((c + 1) * class_granularity);
}

void deallocate_frame(void* block, std::size_t size) noexcept {
    std::size_t c = class_of(size);
    if (size == 0 || c >= class_count) {
        ::operator delete(block);
        return;
    }
    FreeLists& lists = free_lists;
    if (lists.counts[c] >= max_cached_per_class) {
        ::operator delete(block);
        return;
    }
    lists.heads[c] = new (block) FreeBlock{lists.heads[c]};
    ++lists.counts[c];
}

} // namespace ringlet::detail
