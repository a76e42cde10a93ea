// JSON (RFC 8259) input: a whole text parsed into a flat array of nodes, read through Value
// handles. Strict: UTF-8 checked, no comments, no trailing commas, nothing after the value.
//
// The project's own reader (simdjson did this before). A shared C++ library makes every
// tool load the shared C++ runtime as well: ~1 ms of each start on this project's
// machines, 5-6% of a `bgp-announce decode` of a capture. Without one, the tools link the
// C++ runtime statically. The inputs here are small records (JSON Lines, commands, ROA
// exports), for which a plain recursive parse is fast enough.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edge::json {

enum class Type : uint8_t { null, boolean, int64, uint64, number, string, array, object };

class Document;

// A value in a Document (valid while it is, and until its next parse), or a missing one
// (a member that is not there): every read of a missing value fails.
class Value {
public:
    Value() = default;
    explicit operator bool() const noexcept { return doc_ != nullptr; }
    Type type() const noexcept;
    bool is_object() const noexcept { return doc_ && type() == Type::object; }
    bool is_array() const noexcept { return doc_ && type() == Type::array; }
    bool is_string() const noexcept { return doc_ && type() == Type::string; }
    bool is_null() const noexcept { return doc_ && type() == Type::null; }
    bool is_number() const noexcept;

    // Typed reads: true and `out` set, or false (missing, or another type) and `out` as it was.
    bool get(std::string_view& out) const noexcept;
    bool get(int64_t& out) const noexcept;   // an integer in int64 range
    bool get(uint64_t& out) const noexcept;  // an integer in uint64 range
    bool get(double& out) const noexcept;    // any number
    bool get(bool& out) const noexcept;

    // An object's member (the first of that name), or a missing value.
    Value operator[](std::string_view key) const noexcept;
    // Elements of an array or members of an object; 0 for anything else.
    std::size_t size() const noexcept;

    // Iteration: for (Value e : v.elements()), for (auto [key, val] : v.members()). Empty
    // for values of another type.
    class ElementIter;
    class MemberIter;
    template <typename It>
    struct Range {
        It b, e;
        It begin() const { return b; }
        It end() const { return e; }
    };
    Range<ElementIter> elements() const noexcept;
    Range<MemberIter> members() const noexcept;

    // The value as compact JSON text.
    std::string minify() const;

private:
    friend class Document;
    Value(const Document* d, uint32_t i) : doc_(d), i_(i) {}
    const Document* doc_ = nullptr;
    uint32_t i_ = 0;
};

class Document {
public:
    // Parses `text`; false with error() set when it is not one JSON value. Earlier Values
    // of this document are invalid afterwards.
    bool parse(std::string_view text);
    Value root() const noexcept { return nodes_.empty() ? Value() : Value(this, 0); }
    const std::string& error() const noexcept { return error_; }

    static constexpr std::size_t max_depth = 1024;

private:
    friend class Value;
    struct Node {
        Type type;
        bool b = false;
        uint32_t count = 0;  // array elements, object members
        uint32_t end = 0;    // index after this value's last node
        union {
            int64_t i;
            uint64_t u;
            double d;
            struct {
                uint32_t off, len;
            } s;  // in strings_
        };
        Node() : i(0) {}
    };
    bool value(std::size_t depth);
    bool string();  // appends a string node
    bool number();
    bool literal(std::string_view word, Type t, bool b);
    bool fail(std::string_view what);
    void skip_ws() noexcept;
    std::string_view str(const Node& n) const noexcept { return {strings_.data() + n.s.off, n.s.len}; }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::vector<Node> nodes_;
    std::string strings_;  // every string's bytes, unescaped
    std::string error_;
};

class Value::ElementIter {
public:
    Value operator*() const noexcept { return Value(d_, i_); }
    ElementIter& operator++() noexcept;
    bool operator!=(const ElementIter& o) const noexcept { return i_ != o.i_; }

private:
    friend class Value;
    ElementIter(const Document* d, uint32_t i) : d_(d), i_(i) {}
    const Document* d_;
    uint32_t i_;
};

class Value::MemberIter {
public:
    std::pair<std::string_view, Value> operator*() const noexcept;
    MemberIter& operator++() noexcept;
    bool operator!=(const MemberIter& o) const noexcept { return i_ != o.i_; }

private:
    friend class Value;
    MemberIter(const Document* d, uint32_t i) : d_(d), i_(i) {}
    const Document* d_;
    uint32_t i_;  // the key's node
};

}  // namespace edge::json
