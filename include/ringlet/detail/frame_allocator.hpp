// Per-thread size-class free lists for coroutine frames (a task's state lives in its frame).
// Thread safety: each thread has its own lists; a block freed on another thread than the one
// that allocated it simply joins that thread's list. Design notes in lib/frame_allocator.cpp.
#pragma once

#include <cstddef>

namespace ringlet::detail {

/// Returns a block of at least `size` bytes, aligned like ::operator new.
void* allocate_frame(std::size_t size);

/// Returns a block obtained from allocate_frame(size) with the same size.
void deallocate_frame(void* block, std::size_t size) noexcept;

/// False where frames come straight from ::operator new (AddressSanitizer builds, so that ASan
/// sees every frame's lifetime), true where freed blocks are pooled for reuse.
bool frame_pooling() noexcept;

} // namespace ringlet::detail
