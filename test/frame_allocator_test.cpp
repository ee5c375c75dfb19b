// Unit tests of the per-thread size-class frame allocator: reuse of freed blocks per class,
// large sizes, and alignment.
#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ringlet/detail/frame_allocator.hpp>
#include <vector>

using ringlet::detail::allocate_frame;
using ringlet::detail::deallocate_frame;

TEST_CASE("a freed frame block is reused for the next allocation of its size class") {
    void* a = allocate_frame(100);
    deallocate_frame(a, 100);
    void* b = allocate_frame(100);
    CHECK(b == a);
    // 120 bytes fall in the same 64-byte class (65..128) as 100: the block comes back again.
    deallocate_frame(b, 100);
    void* c = allocate_frame(120);
    CHECK(c == a);
    deallocate_frame(c, 120);
}

TEST_CASE("frame blocks of different size classes are not mixed up") {
    void* small = allocate_frame(40);
    deallocate_frame(small, 40);
    void* big = allocate_frame(500); // another class: must not get the 64-byte block
    CHECK(big != small);
    std::memset(big, 0xab, 500);
    void* small_again = allocate_frame(40);
    CHECK(small_again == small);
    deallocate_frame(small_again, 40);
    deallocate_frame(big, 500);
}

TEST_CASE("frame free lists are LIFO per size class") {
    void* a = allocate_frame(200);
    void* b = allocate_frame(200);
    REQUIRE(a != b);
    deallocate_frame(a, 200);
    deallocate_frame(b, 200);
    CHECK(allocate_frame(200) == b);
    CHECK(allocate_frame(200) == a);
    deallocate_frame(a, 200);
    deallocate_frame(b, 200);
}

TEST_CASE("frame allocations above 1 KiB work and are fully usable") {
    for (std::size_t size : {1024u, 1025u, 4096u, 100'000u}) {
        auto* p = static_cast<unsigned char*>(allocate_frame(size));
        REQUIRE(p != nullptr);
        std::memset(p, 0x5a, size);
        CHECK(p[0] == 0x5a);
        CHECK(p[size - 1] == 0x5a);
        deallocate_frame(p, size);
    }
}

TEST_CASE("frame blocks are aligned at least like std::max_align_t") {
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (std::size_t size = 1; size <= 2048; size += 37) {
        void* p = allocate_frame(size);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
        blocks.emplace_back(p, size);
    }
    for (auto [p, size] : blocks)
        deallocate_frame(p, size);
    // Blocks handed out again from the free lists keep their alignment.
    for (std::size_t size = 1; size <= 2048; size += 37) {
        void* p = allocate_frame(size);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
        deallocate_frame(p, size);
    }
}
