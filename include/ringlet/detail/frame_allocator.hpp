// Per-thread size-class free lists for coroutine frames and task states.
// Thread safety: each thread has its own lists; a block freed on another thread than the one
// that allocated it simply joins that thread's list (all blocks come from ::operator new).
#pragma once

#include <cstddef>

namespace ringlet::detail {

/// Returns a block of at least `size` bytes, aligned like ::operator new.
void* allocate_frame(std::size_t size);

/// Returns a block obtained from allocate_frame(size) with the same size.
void deallocate_frame(void* block, std::size_t size) noexcept;

} // namespace ringlet::detail
