// GreenletValue: what a Greenlet passes at a switch, a value of any copyable type (Python's
// greenlet passes any object), read back with greenlet_cast<T>, like std::any and any_cast.
// Unlike std::any it moves without a call: a small trivially copyable value (a number, a
// pointer, a struct of up to 16 bytes) is stored inline, anything else on the heap, and either
// way a move copies the 24 bytes of the object itself (16 bytes inline measured faster than 8
// or 24 for a switch: tools/bench/greenlet_bench).
// Thread safety: as for any value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace ringlet {

/// Thrown by greenlet_cast<T> when the value is empty or holds another type than T.
class BadGreenletCast : public std::bad_cast {
  public:
    const char* what() const noexcept override {
        return "ringlet::greenlet_cast: the GreenletValue holds another type (or nothing)";
    }
};

/// A copyable value of any copyable type, or nothing (Python's greenlet switch() without
/// arguments).
class GreenletValue {
  public:
    GreenletValue() noexcept = default;

    /// Holds a copy of (or the moved) `value`, as std::any does.
    /// Throws: what T's copy or move throws; std::bad_alloc for a value stored on the heap.
    template <class U, class T = std::decay_t<U>>
    requires(!std::is_same_v<T, GreenletValue> && std::is_copy_constructible_v<T>)
        GreenletValue(U&& value) { // NOLINT: implicit, as std::any's
        construct<T>(std::forward<U>(value));
    }

    GreenletValue(const GreenletValue& other) {
        if (other.handler_ & heap_bit)
            other.handler()->copy(other, *this);
        else
            take_bytes(other);
    }
    GreenletValue(GreenletValue&& other) noexcept {
        take_bytes(other);
        other.handler_ = 0;
    }
    GreenletValue& operator=(const GreenletValue& other) {
        if (this != &other)
            *this = GreenletValue(other);
        return *this;
    }
    GreenletValue& operator=(GreenletValue&& other) noexcept {
        if (this != &other) {
            reset();
            take_bytes(other);
            other.handler_ = 0;
        }
        return *this;
    }
    ~GreenletValue() { reset(); }

    bool has_value() const noexcept { return handler_ != 0; }
    /// typeid of the value held, typeid(void) when empty.
    const std::type_info& type() const noexcept {
        return handler_ != 0 ? handler()->type() : typeid(void);
    }
    /// Destroys the value held, if any.
    void reset() noexcept {
        if (handler_ & heap_bit)
            handler()->destroy(*this);
        handler_ = 0;
    }
    /// Replaces the value held by a T made from `args`.
    template <class T, class... Args>
    requires std::is_copy_constructible_v<T> T& emplace(Args&&... args) {
        reset();
        construct<T>(std::forward<Args>(args)...);
        return *get<T>();
    }

  private:
    template <class T>
    friend const T* greenlet_cast(const GreenletValue* value) noexcept;

    static constexpr std::size_t inline_size = 16;
    template <class T>
    static constexpr bool stored_inline = std::is_trivially_copyable_v<T> &&
                                          sizeof(T) <= inline_size && alignof(T) <= alignof(void*);

    struct Handler {
        const std::type_info& (*type)() noexcept;
        void (*copy)(const GreenletValue& from, GreenletValue& to); // heap values only
        void (*destroy)(GreenletValue& value) noexcept;             // heap values only
    };
    // In handler_: the value lives on the heap (copy and destroy go through the handler); an
    // inline value is its bytes, copied as they are.
    static constexpr std::uintptr_t heap_bit = 1;

    template <class T>
    static const std::type_info& type_of() noexcept {
        return typeid(T);
    }
    template <class T>
    static void copy_heap(const GreenletValue& from, GreenletValue& to) {
        to.set_pointer(new T(*from.template get<T>()));
        to.handler_ = reinterpret_cast<std::uintptr_t>(&handler_for<T>) | heap_bit;
    }
    template <class T>
    static void destroy_heap(GreenletValue& value) noexcept {
        delete value.template get<T>();
    }
    template <class T>
    static constexpr Handler handler_for{&type_of<T>, stored_inline<T> ? nullptr : &copy_heap<T>,
                                         stored_inline<T> ? nullptr : &destroy_heap<T>};

    const Handler* handler() const noexcept {
        return reinterpret_cast<const Handler*>(handler_ & ~heap_bit);
    }
    void take_bytes(const GreenletValue& other) noexcept {
        std::memcpy(storage_, other.storage_, inline_size);
        handler_ = other.handler_;
    }

    template <class T, class... Args>
    void construct(Args&&... args) {
        auto tag = reinterpret_cast<std::uintptr_t>(&handler_for<T>);
        if constexpr (stored_inline<T>) {
            ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);
        } else {
            set_pointer(new T(std::forward<Args>(args)...));
            tag |= heap_bit;
        }
        handler_ = tag;
    }

    void set_pointer(void* p) noexcept { std::memcpy(storage_, &p, sizeof p); }

    template <class T>
    T* get() noexcept {
        return const_cast<T*>(std::as_const(*this).template get<T>());
    }
    template <class T>
    const T* get() const noexcept {
        if constexpr (stored_inline<T>) {
            return std::launder(reinterpret_cast<const T*>(storage_));
        } else {
            void* p;
            std::memcpy(&p, storage_, sizeof p);
            return static_cast<const T*>(p);
        }
    }

    template <class T>
    bool holds() const noexcept {
        // The handler identifies T; across shared libraries it may be another copy of it.
        return handler() == &handler_for<T> || (handler_ != 0 && handler()->type() == typeid(T));
    }

    alignas(void*) std::byte storage_[inline_size];
    std::uintptr_t handler_ = 0; // const Handler*, with heap_bit; 0 when empty
};

/// The T held by `value`, or nullptr (empty, or another type).
template <class T>
const T* greenlet_cast(const GreenletValue* value) noexcept {
    using U = std::remove_cv_t<T>;
    if (value == nullptr || !value->template holds<U>())
        return nullptr;
    return value->template get<U>();
}

template <class T>
T* greenlet_cast(GreenletValue* value) noexcept {
    return const_cast<T*>(greenlet_cast<T>(static_cast<const GreenletValue*>(value)));
}

/// A copy of the T held by `value` (T may be a reference type: `greenlet_cast<int&>(v)`).
/// Throws: BadGreenletCast if `value` is empty or holds another type.
template <class T>
T greenlet_cast(const GreenletValue& value) {
    using U = std::remove_cvref_t<T>;
    const U* p = greenlet_cast<U>(&value);
    if (p == nullptr)
        throw BadGreenletCast();
    return static_cast<T>(*p);
}

template <class T>
T greenlet_cast(GreenletValue& value) {
    using U = std::remove_cvref_t<T>;
    U* p = greenlet_cast<U>(&value);
    if (p == nullptr)
        throw BadGreenletCast();
    return static_cast<T>(*p);
}

/// Moves the T out of `value` (it keeps a moved-from T).
/// Throws: BadGreenletCast if `value` is empty or holds another type.
template <class T>
T greenlet_cast(GreenletValue&& value) {
    using U = std::remove_cvref_t<T>;
    U* p = greenlet_cast<U>(&value);
    if (p == nullptr)
        throw BadGreenletCast();
    return static_cast<T>(std::move(*p));
}

} // namespace ringlet
