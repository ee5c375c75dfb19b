// GreenletValue: what a Greenlet passes at a switch, a value of any copyable type (Python's
// greenlet passes any object), read back with greenlet_cast<T>, like std::any and any_cast.
// Unlike std::any it moves without a call: a small trivially copyable value (a number, a
// pointer, a struct of up to 24 bytes) is stored inline, anything else on the heap, and either
// way a move copies the 32 bytes of the object itself. A switch moves its value twice.
// Thread safety: as for any value type.
#pragma once

#include <array>
#include <cstddef>
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

    GreenletValue(const GreenletValue& other) : storage_(other.storage_), handler_(other.handler_) {
        if (handler_ != nullptr && handler_->copy != nullptr)
            handler_->copy(other, *this);
    }
    GreenletValue(GreenletValue&& other) noexcept
        : storage_(other.storage_), handler_(std::exchange(other.handler_, nullptr)) {}
    GreenletValue& operator=(const GreenletValue& other) {
        if (this != &other)
            *this = GreenletValue(other);
        return *this;
    }
    GreenletValue& operator=(GreenletValue&& other) noexcept {
        if (this != &other) {
            reset();
            storage_ = other.storage_;
            handler_ = std::exchange(other.handler_, nullptr);
        }
        return *this;
    }
    ~GreenletValue() { reset(); }

    bool has_value() const noexcept { return handler_ != nullptr; }
    /// typeid of the value held, typeid(void) when empty.
    const std::type_info& type() const noexcept {
        return handler_ != nullptr ? handler_->type() : typeid(void);
    }
    /// Destroys the value held, if any.
    void reset() noexcept {
        if (handler_ != nullptr && handler_->destroy != nullptr)
            handler_->destroy(*this);
        handler_ = nullptr;
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

    static constexpr std::size_t inline_size = 24;
    template <class T>
    static constexpr bool stored_inline = std::is_trivially_copyable_v<T> &&
                                          sizeof(T) <= inline_size && alignof(T) <= alignof(void*);

    struct Handler {
        const std::type_info& (*type)() noexcept;
        void (*copy)(const GreenletValue& from, GreenletValue& to); // null: the bytes are the copy
        void (*destroy)(GreenletValue& value) noexcept;             // null: nothing to destroy
    };

    template <class T>
    static const std::type_info& type_of() noexcept {
        return typeid(T);
    }
    template <class T>
    static void copy_heap(const GreenletValue& from, GreenletValue& to) {
        to.handler_ = nullptr; // if the copy throws, `to` is empty
        to.set_pointer(new T(*from.template get<T>()));
        to.handler_ = &handler_for<T>;
    }
    template <class T>
    static void destroy_heap(GreenletValue& value) noexcept {
        delete value.template get<T>();
    }
    template <class T>
    static constexpr Handler handler_for =
        stored_inline<T> ? Handler{&type_of<T>, nullptr, nullptr}
                         : Handler{&type_of<T>, &copy_heap<T>, &destroy_heap<T>};

    template <class T, class... Args>
    void construct(Args&&... args) {
        if constexpr (stored_inline<T>)
            ::new (static_cast<void*>(storage_.data())) T(std::forward<Args>(args)...);
        else
            set_pointer(new T(std::forward<Args>(args)...));
        handler_ = &handler_for<T>;
    }

    void set_pointer(void* p) noexcept { std::memcpy(storage_.data(), &p, sizeof p); }

    template <class T>
    T* get() noexcept {
        return const_cast<T*>(std::as_const(*this).template get<T>());
    }
    template <class T>
    const T* get() const noexcept {
        if constexpr (stored_inline<T>) {
            return std::launder(reinterpret_cast<const T*>(storage_.data()));
        } else {
            void* p;
            std::memcpy(&p, storage_.data(), sizeof p);
            return static_cast<const T*>(p);
        }
    }

    template <class T>
    bool holds() const noexcept {
        // The handler identifies T; across shared libraries it may be another copy of it.
        return handler_ == &handler_for<T> ||
               (handler_ != nullptr && handler_->type() == typeid(T));
    }

    alignas(void*) std::array<std::byte, inline_size> storage_{};
    const Handler* handler_ = nullptr;
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
