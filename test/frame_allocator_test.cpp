// Unit tests of the per-thread size-class frame allocator: reuse of freed blocks per class,
// large sizes, alignment, and blocks of exited threads serving other threads. Under
// AddressSanitizer frames come from ::operator new (frame_pooling() is false): the reuse tests
// then check only that blocks are usable.
#include "support.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ringlet/detail/frame_allocator.hpp>
#include <set>
#include <thread>
#include <vector>

using ringlet::detail::allocate_frame;
using ringlet::detail::deallocate_frame;
using ringlet::detail::frame_pooling;

TEST_CASE("a freed frame block is reused for the next allocation of its size class") {
    void* a = allocate_frame(100);
    deallocate_frame(a, 100);
    void* b = allocate_frame(100);
    CHECK((b == a || !frame_pooling()));
    // 110 bytes fall in the same 16-byte class (97..112) as 100: the block comes back again.
    deallocate_frame(b, 100);
    void* c = allocate_frame(110);
    CHECK((c == a || !frame_pooling()));
    deallocate_frame(c, 110);
}

TEST_CASE("frame blocks of different size classes are not mixed up") {
    void* small = allocate_frame(40);
    deallocate_frame(small, 40);
    void* big = allocate_frame(500); // another class: must not get the 64-byte block
    CHECK(big != small);
    std::memset(big, 0xab, 500);
    void* small_again = allocate_frame(40);
    CHECK((small_again == small || !frame_pooling()));
    deallocate_frame(small_again, 40);
    deallocate_frame(big, 500);
}

TEST_CASE("frame free lists are LIFO per size class") {
    void* a = allocate_frame(200);
    void* b = allocate_frame(200);
    REQUIRE(a != b);
    deallocate_frame(a, 200);
    deallocate_frame(b, 200);
    void* first = allocate_frame(200);
    void* second = allocate_frame(200);
    if (frame_pooling()) {
        CHECK(first == b);
        CHECK(second == a);
    }
    deallocate_frame(first, 200);
    deallocate_frame(second, 200);
}

TEST_CASE("frame allocations of every size class and above 2 KiB work and are fully usable") {
    for (std::size_t size :
         {1u, 16u, 17u, 512u, 513u, 1024u, 1025u, 2048u, 2049u, 4096u, 100'000u}) {
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

TEST_CASE("frame blocks freed by a thread that exited serve other threads") {
    constexpr std::size_t n = 1000;
    constexpr std::size_t size = 464;
    std::set<void*> freed;
    std::thread([&] {
        std::vector<void*> blocks;
        for (std::size_t i = 0; i < n; ++i)
            blocks.push_back(allocate_frame(size));
        for (void* p : blocks) {
            freed.insert(p);
            deallocate_frame(p, size);
        }
    }).join(); // the thread's cache hands its free blocks over as it exits
    // A fresh thread has empty lists: its first blocks come from the exited thread's.
    std::size_t reused = 0;
    std::thread([&] {
        std::vector<void*> blocks;
        for (std::size_t i = 0; i < n; ++i) {
            void* p = allocate_frame(size);
            std::memset(p, 0x11, size);
            reused += freed.count(p);
            blocks.push_back(p);
        }
        for (void* p : blocks)
            deallocate_frame(p, size);
    }).join();
    CHECK((reused == n || !frame_pooling()));
}

TEST_CASE("a million frame blocks of one class are distinct and stay usable") {
    constexpr std::size_t n = 1'000'000;
    std::vector<unsigned char*> blocks;
    blocks.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto* p = static_cast<unsigned char*>(allocate_frame(96));
        p[0] = static_cast<unsigned char>(i);
        p[95] = static_cast<unsigned char>(i >> 8);
        blocks.push_back(p);
    }
    std::size_t intact = 0;
    for (std::size_t i = 0; i < n; ++i)
        intact += blocks[i][0] == static_cast<unsigned char>(i) &&
                  blocks[i][95] == static_cast<unsigned char>(i >> 8);
    CHECK(intact == n);
    for (unsigned char* p : blocks)
        deallocate_frame(p, 96);
}
