// A small JSON value: enough for model files and option sets, no dependency.
//
// Objects keep their members in insertion order so that a saved model file
// reads in the order it was written (spec first, then genes, ...), and a
// round trip through parse() and dump() reproduces the text. Torch-free.
//
// Strings are byte strings: \uXXXX escapes (surrogate pairs included) are
// decoded to UTF-8, and any other byte >= 0x80 passes through unchanged in
// both directions, so whatever the front end stored (gene names in whatever
// encoding R handed over) comes back byte for byte.
//
// Every error is a std::invalid_argument: parse errors give the byte offset
// of the offending character, accessor errors name the key or type involved.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace exprflow {
namespace json {

class Value {
 public:
  enum class Type { null, boolean, number, string, array, object };
  using Array = std::vector<Value>;
  using Object = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool value) : type_(Type::boolean), boolean_(value) {}
  // Any arithmetic type but bool becomes a number; without the template,
  // Value(3) would be ambiguous between bool and double.
  template <typename T,
            std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T value) : type_(Type::number), number_(static_cast<double>(value)) {}
  Value(std::string value) : type_(Type::string), string_(std::move(value)) {}
  Value(const char* value) : Value(std::string(value)) {}

  static Value object() { return Value(Type::object); }
  static Value array() { return Value(Type::array); }
  static Value strings(const std::vector<std::string>& values);
  static Value numbers(const std::vector<double>& values);

  Type type() const { return type_; }
  const char* type_name() const;
  bool is_null() const { return type_ == Type::null; }
  bool is_bool() const { return type_ == Type::boolean; }
  bool is_number() const { return type_ == Type::number; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  // Checked reads: a wrong type throws, naming the type found.
  bool as_bool() const;
  double as_number() const;
  const std::string& as_string() const;
  const Array& as_array() const;
  Array& as_array();
  const Object& as_object() const;
  Object& as_object();

  // Homogeneous arrays, as the model file stores gene names and dispersions.
  // number_array() reads null as NaN, the counterpart of dump() writing
  // non-finite numbers as null.
  std::vector<std::string> string_array() const;
  std::vector<double> number_array() const;

  // Object members; at() throws naming the missing key, find() returns null.
  bool contains(const std::string& key) const { return find(key) != nullptr; }
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);
  const Value& at(const std::string& key) const;
  Value& at(const std::string& key);

  // Builders, chainable. set() replaces an existing key in place (keeping its
  // position) so an object never holds the same key twice.
  Value& set(const std::string& key, Value value);
  Value& push(Value value);

  // Members of an object or elements of an array; 0 for scalars.
  std::size_t size() const;

  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  explicit Value(Type type) : type_(type) {}
  [[noreturn]] void type_error(const char* expected) const;

  Type type_ = Type::null;
  bool boolean_ = false;
  double number_ = 0.0;
  std::string string_;
  Array array_;
  Object object_;
};

// Strict RFC 8259: one value, optionally surrounded by whitespace; no
// comments, trailing commas, NaN or duplicate object keys.
Value parse(const std::string& text);

// Compact (no whitespace). Non-finite numbers are written as null, as
// JavaScript's JSON.stringify does, since JSON has no NaN or infinity.
std::string dump(const Value& value);

// The shortest text that reads back as the same double (integral values
// without exponent or decimal point); locale-independent. Non-finite values
// give "nan", "inf" or "-inf", which is for messages, not for JSON.
std::string format_number(double value);

}  // namespace json
}  // namespace exprflow
