#include "io/json.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <unordered_set>

namespace exprflow {
namespace json {

// ------------------------------------------------------------------ value ---

Value Value::strings(const std::vector<std::string>& values) {
  Value out = array();
  out.array_.assign(values.begin(), values.end());
  return out;
}

Value Value::numbers(const std::vector<double>& values) {
  Value out = array();
  out.array_.assign(values.begin(), values.end());
  return out;
}

const char* Value::type_name() const {
  switch (type_) {
    case Type::null: return "null";
    case Type::boolean: return "boolean";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::array: return "array";
    case Type::object: return "object";
  }
  return "unknown";
}

void Value::type_error(const char* expected) const {
  throw std::invalid_argument(std::string("JSON value is ") + type_name() + ", expected " +
                              expected);
}

bool Value::as_bool() const {
  if (type_ != Type::boolean) type_error("boolean");
  return boolean_;
}

double Value::as_number() const {
  if (type_ != Type::number) type_error("number");
  return number_;
}

const std::string& Value::as_string() const {
  if (type_ != Type::string) type_error("string");
  return string_;
}

const Value::Array& Value::as_array() const {
  if (type_ != Type::array) type_error("array");
  return array_;
}

Value::Array& Value::as_array() {
  if (type_ != Type::array) type_error("array");
  return array_;
}

const Value::Object& Value::as_object() const {
  if (type_ != Type::object) type_error("object");
  return object_;
}

Value::Object& Value::as_object() {
  if (type_ != Type::object) type_error("object");
  return object_;
}

std::vector<std::string> Value::string_array() const {
  const Array& items = as_array();
  std::vector<std::string> out;
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].is_string()) {
      throw std::invalid_argument("JSON array element " + std::to_string(i) + " is " +
                                  items[i].type_name() + ", expected string");
    }
    out.push_back(items[i].string_);
  }
  return out;
}

std::vector<double> Value::number_array() const {
  const Array& items = as_array();
  std::vector<double> out;
  out.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].is_null()) {
      out.push_back(std::nan(""));
    } else if (items[i].is_number()) {
      out.push_back(items[i].number_);
    } else {
      throw std::invalid_argument("JSON array element " + std::to_string(i) + " is " +
                                  items[i].type_name() + ", expected number");
    }
  }
  return out;
}

const Value* Value::find(const std::string& key) const {
  for (const auto& member : as_object()) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

Value* Value::find(const std::string& key) {
  for (auto& member : as_object()) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

const Value& Value::at(const std::string& key) const {
  const Value* found = find(key);
  if (found == nullptr) throw std::invalid_argument("JSON object has no key '" + key + "'");
  return *found;
}

Value& Value::at(const std::string& key) {
  Value* found = find(key);
  if (found == nullptr) throw std::invalid_argument("JSON object has no key '" + key + "'");
  return *found;
}

Value& Value::set(const std::string& key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
  } else {
    object_.emplace_back(key, std::move(value));
  }
  return *this;
}

Value& Value::push(Value value) {
  as_array().push_back(std::move(value));
  return *this;
}

std::size_t Value::size() const {
  if (type_ == Type::array) return array_.size();
  if (type_ == Type::object) return object_.size();
  return 0;
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Value::Type::null: return true;
    case Value::Type::boolean: return a.boolean_ == b.boolean_;
    case Value::Type::number: return a.number_ == b.number_;
    case Value::Type::string: return a.string_ == b.string_;
    case Value::Type::array: return a.array_ == b.array_;
    case Value::Type::object: return a.object_ == b.object_;
  }
  return false;
}

// ----------------------------------------------------------------- number ---

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  double magnitude = std::fabs(value);
  // Below 2^53 every integral double is an exact integer; writing it without
  // an exponent keeps counts and sizes readable ("1000000", not "1e+06").
  if (value == std::trunc(value) && magnitude < kExactIntegers) {
    if (value == 0.0) return std::signbit(value) ? "-0" : "0";
    return std::to_string(static_cast<long long>(value));
  }
  // std::to_chars is locale-independent (snprintf would write "0,5" under a
  // German LC_NUMERIC) and gives the shortest digits that read back exactly.
  // Like JavaScript, plain decimals down to 1e-6 ("0.0003", not "3e-04");
  // above 2^53 every double is integral and the exponent form is shorter.
  char buffer[64];
  std::to_chars_result result =
      magnitude >= 1e-6 && magnitude < kExactIntegers
          ? std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed)
          : std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

// ------------------------------------------------------------------ parse ---

namespace {

constexpr int kMaxDepth = 512;  // deeper nesting is malformed, not data

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}

  Value document() {
    skip_whitespace();
    Value value = parse_value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail("unexpected " + describe_here() + " after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { fail_at(pos_, message); }

  [[noreturn]] void fail_at(std::size_t offset, const std::string& message) const {
    throw std::invalid_argument("JSON parse error at byte offset " + std::to_string(offset) +
                                ": " + message);
  }

  std::string describe_here() const {
    if (pos_ >= text_.size()) return "end of input";
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7f) return std::string("character '") + static_cast<char>(c) + "'";
    static const char* hex = "0123456789abcdef";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xf];
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end()) {
      char c = peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  void expect(char c, const char* context) {
    if (at_end() || peek() != c) {
      fail(std::string("expected '") + c + "' " + context + ", found " + describe_here());
    }
    ++pos_;
  }

  Value parse_value(int depth) {
    if (at_end()) fail("expected a JSON value, found end of input");
    switch (peek()) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Value(parse_string());
      case 't': literal("true"); return Value(true);
      case 'f': literal("false"); return Value(false);
      case 'n': literal("null"); return Value();
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return Value(parse_number());
        fail("expected a JSON value, found " + describe_here());
    }
  }

  void literal(const char* word) {
    std::size_t start = pos_;
    for (const char* p = word; *p != '\0'; ++p, ++pos_) {
      if (at_end() || peek() != *p) fail_at(start, std::string("invalid literal, expected '") + word + "'");
    }
  }

  Value parse_object(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '{'
    Value object = Value::object();
    Value::Object& members = object.as_object();
    std::unordered_set<std::string> seen;
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return object;
    }
    while (true) {
      skip_whitespace();
      std::size_t key_offset = pos_;
      if (at_end() || peek() != '"') fail("expected a string key in object, found " + describe_here());
      std::string key = parse_string();
      // An object read back must mean one thing; with duplicates, which value
      // wins would depend on the reader.
      if (!seen.insert(key).second) fail_at(key_offset, "duplicate key '" + key + "' in object");
      skip_whitespace();
      expect(':', "after object key");
      skip_whitespace();
      members.emplace_back(std::move(key), parse_value(depth + 1));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (!at_end() && peek() == '}') {
        ++pos_;
        return object;
      }
      fail("expected ',' or '}' in object, found " + describe_here());
    }
  }

  Value parse_array(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    ++pos_;  // '['
    Value array = Value::array();
    Value::Array& items = array.as_array();
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return array;
    }
    while (true) {
      skip_whitespace();
      items.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (!at_end() && peek() == ']') {
        ++pos_;
        return array;
      }
      fail("expected ',' or ']' in array, found " + describe_here());
    }
  }

  double parse_number() {
    std::size_t start = pos_;
    auto digits = [&] {
      std::size_t first = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - first;
    };
    if (peek() == '-') ++pos_;
    if (!at_end() && peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail_at(start, "leading zeros are not allowed in numbers");
    } else if (digits() == 0) {
      fail("expected a digit, found " + describe_here());
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected a digit after the decimal point, found " + describe_here());
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent, found " + describe_here());
    }
    // The grammar is checked above; from_chars only converts, exactly and
    // independently of the locale.
    double value = 0.0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    auto result = std::from_chars(first, last, value);
    if (result.ec == std::errc::result_out_of_range) {
      fail_at(start, "number '" + std::string(first, last) + "' is out of the range of a double");
    }
    if (result.ec != std::errc() || result.ptr != last) fail_at(start, "invalid number");
    return value;
  }

  unsigned hex4() {
    unsigned code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      if (at_end()) fail("expected 4 hex digits in \\u escape, found end of input");
      char c = peek();
      code <<= 4;
      if (c >= '0' && c <= '9') {
        code |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        code |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        code |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        fail("expected 4 hex digits in \\u escape, found " + describe_here());
      }
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xc0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xe0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code & 0x3f));
    }
  }

  std::string parse_string() {
    std::size_t start = pos_;
    ++pos_;  // '"'
    std::string out;
    while (true) {
      if (at_end()) fail_at(start, "unterminated string");
      unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("control character " + describe_here() + " must be escaped in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      std::size_t escape_offset = pos_;
      ++pos_;
      if (at_end()) fail_at(start, "unterminated string");
      char e = peek();
      ++pos_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = hex4();
          if (code >= 0xdc00 && code <= 0xdfff) {
            fail_at(escape_offset, "unpaired low surrogate in \\u escape");
          }
          if (code >= 0xd800 && code <= 0xdbff) {
            if (pos_ + 1 >= text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
              fail_at(escape_offset, "high surrogate in \\u escape not followed by a low surrogate");
            }
            pos_ += 2;
            unsigned low = hex4();
            if (low < 0xdc00 || low > 0xdfff) {
              fail_at(escape_offset, "high surrogate in \\u escape not followed by a low surrogate");
            }
            code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          }
          append_utf8(out, code);
          break;
        }
        default:
          pos_ = escape_offset;
          fail(std::string("invalid escape '\\") + e + "' in string");
      }
    }
  }

  const std::string& text_;
  std::size_t pos_ = 0;
};

// ------------------------------------------------------------------- dump ---

void dump_string(const std::string& text, std::string& out) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void dump_value(const Value& value, std::string& out) {
  switch (value.type()) {
    case Value::Type::null: out += "null"; break;
    case Value::Type::boolean: out += value.as_bool() ? "true" : "false"; break;
    case Value::Type::number: {
      double number = value.as_number();
      out += std::isfinite(number) ? format_number(number) : "null";
      break;
    }
    case Value::Type::string: dump_string(value.as_string(), out); break;
    case Value::Type::array: {
      out += '[';
      bool first = true;
      for (const Value& item : value.as_array()) {
        if (!first) out += ',';
        first = false;
        dump_value(item, out);
      }
      out += ']';
      break;
    }
    case Value::Type::object: {
      out += '{';
      bool first = true;
      for (const auto& member : value.as_object()) {
        if (!first) out += ',';
        first = false;
        dump_string(member.first, out);
        out += ':';
        dump_value(member.second, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

Value parse(const std::string& text) { return Parser(text).document(); }

std::string dump(const Value& value) {
  std::string out;
  dump_value(value, out);
  return out;
}

}  // namespace json
}  // namespace exprflow
