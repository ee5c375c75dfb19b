// PodArray<T>: a growable array of trivially copyable T for the loop's big tables (the timer
// heap). Past 1 MiB its storage is an anonymous mapping that grows by mremap: the kernel moves
// the pages instead of copying them, so growing never holds the old and the new storage at
// once (no resident-memory spike, no copy of a million entries). Loop thread only.
#pragma once

#include <cassert>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace ringlet::detail {

/// Moves `used` bytes of `old` (`old_capacity` bytes, from an earlier call; nullptr at first)
/// into storage of `new_capacity` bytes and releases `old`. Throws: std::bad_alloc.
void* grow_pod_storage(void* old, std::size_t used, std::size_t old_capacity,
                       std::size_t new_capacity);
/// Releases storage obtained from grow_pod_storage.
void free_pod_storage(void* storage, std::size_t capacity) noexcept;

template <class T>
class PodArray {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

  public:
    PodArray() noexcept = default;
    PodArray(const PodArray&) = delete;
    PodArray& operator=(const PodArray&) = delete;
    ~PodArray() { free_pod_storage(data_, capacity_ * sizeof(T)); }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T* begin() noexcept { return data_; }
    T* end() noexcept { return data_ + size_; }
    const T* begin() const noexcept { return data_; }
    const T* end() const noexcept { return data_ + size_; }
    T& operator[](std::size_t i) noexcept {
        assert(i < size_);
        return data_[i];
    }
    const T& operator[](std::size_t i) const noexcept {
        assert(i < size_);
        return data_[i];
    }
    T& front() noexcept { return (*this)[0]; }
    T& back() noexcept { return (*this)[size_ - 1]; }

    void push_back(const T& value) {
        if (size_ == capacity_)
            grow();
        data_[size_++] = value;
    }
    void pop_back() noexcept {
        assert(size_ > 0);
        --size_;
    }
    /// Drops the entries from `new_size` on.
    void shrink_to(std::size_t new_size) noexcept {
        assert(new_size <= size_);
        size_ = new_size;
    }
    void clear() noexcept { size_ = 0; }

  private:
    void grow() {
        std::size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
        data_ = static_cast<T*>(grow_pod_storage(data_, size_ * sizeof(T), capacity_ * sizeof(T),
                                                 capacity * sizeof(T)));
        capacity_ = capacity;
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

} // namespace ringlet::detail
