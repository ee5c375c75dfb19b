// PodArray storage: malloc below 1 MiB, an anonymous mapping grown by mremap above (the kernel
// moves page-table entries; nothing is copied and the old pages are never resident twice).
#include "ringlet/detail/pod_array.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>

namespace ringlet::detail {
namespace {

constexpr std::size_t mapped_from = 1 << 20;

} // namespace

void* grow_pod_storage(void* old, std::size_t used, std::size_t old_capacity,
                       std::size_t new_capacity) {
    if (new_capacity < mapped_from) {
        void* bigger = std::realloc(old, new_capacity);
        if (bigger == nullptr)
            throw std::bad_alloc();
        return bigger;
    }
    if (old_capacity >= mapped_from) {
        void* moved = ::mremap(old, old_capacity, new_capacity, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED)
            throw std::bad_alloc();
        return moved;
    }
    void* mapped =
        ::mmap(nullptr, new_capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED)
        throw std::bad_alloc();
    if (used > 0)
        std::memcpy(mapped, old, used);
    std::free(old);
    return mapped;
}

void free_pod_storage(void* storage, std::size_t capacity) noexcept {
    if (capacity >= mapped_from)
        ::munmap(storage, capacity);
    else
        std::free(storage);
}

} // namespace ringlet::detail
