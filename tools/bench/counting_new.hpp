// counting_new.hpp: global operator new and delete, every form, replaced by malloc-based ones
// that count the allocations made while `counting_new::counting` is on, to prove that a path
// allocates nothing (ringlet_echo's ALLOCS lines, test/echo_allocation_test.cpp).
// Include it in exactly one translation unit of a program: it defines the replaceable global
// allocation functions. Every form is replaced so that each new meets its own delete
// (AddressSanitizer checks that memory from operator new is not given to free, and back).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace counting_new {

/// Off by default, so that a program counting one phase is not slowed in the others.
inline std::atomic<bool> counting{false};
inline std::atomic<std::uint64_t> allocations{0};

namespace detail {

inline void* allocate(std::size_t size) noexcept {
    if (counting.load(std::memory_order_relaxed))
        allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(size == 0 ? 1 : size);
}

inline void* allocate_or_throw(std::size_t size) {
    if (void* p = allocate(size))
        return p;
    throw std::bad_alloc();
}

inline void* allocate_aligned(std::size_t size, std::align_val_t align) {
    if (counting.load(std::memory_order_relaxed))
        allocations.fetch_add(1, std::memory_order_relaxed);
    auto alignment = static_cast<std::size_t>(align);
    std::size_t rounded = (size + alignment - 1) / alignment * alignment;
    if (void* p = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded))
        return p;
    throw std::bad_alloc();
}

} // namespace detail
} // namespace counting_new

void* operator new(std::size_t size) {
    return counting_new::detail::allocate_or_throw(size);
}
void* operator new[](std::size_t size) {
    return counting_new::detail::allocate_or_throw(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return counting_new::detail::allocate(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return counting_new::detail::allocate(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
    return counting_new::detail::allocate_aligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
    return counting_new::detail::allocate_aligned(size, align);
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    std::free(p);
}
