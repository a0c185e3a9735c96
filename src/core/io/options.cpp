#include "exprflow/options.hpp"

#include <cmath>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <utility>

#include "io/json.hpp"

namespace exprflow {

namespace {

using Kind = Options::Value::Kind;

std::string in_quotes(const std::string& key) { return "'" + key + "'"; }

// Long lists are shown by their first few elements: enough to recognise them.
constexpr size_t kShownElements = 6;

std::string describe(const Options::Value& value) {
  switch (value.kind) {
    case Kind::number: return "number " + format_number(value.number);
    case Kind::text: return "string '" + value.text + "'";
    case Kind::numbers:
    case Kind::texts: {
      const bool numeric = value.kind == Kind::numbers;
      const size_t n = numeric ? value.numbers.size() : value.texts.size();
      if (n == 0) return "an empty list";
      std::string out = "a list of " + std::to_string(n) + (numeric ? " number" : " string") +
                        (n == 1 ? "" : "s") + " [";
      for (size_t i = 0; i < n && i < kShownElements; ++i) {
        if (i > 0) out += ", ";
        out += numeric ? format_number(value.numbers[i]) : "'" + value.texts[i] + "'";
      }
      return out + (n > kShownElements ? ", ...]" : "]");
    }
    case Kind::options: {
      std::string out = "nested options {";
      bool first = true;
      for (const auto& entry : value.nested->values()) {
        if (!first) out += ", ";
        out += entry.first;
        first = false;
      }
      return out + "}";
    }
  }
  return "an unknown value";  // unreachable: every kind is handled above
}

[[noreturn]] void wrong_type(const std::string& name, const char* expected, const Options::Value& value) {
  throw std::invalid_argument("option " + in_quotes(name) + " must be " + expected + ", got " + describe(value));
}

double to_number(const std::string& name, const Options::Value& value) {
  if (value.kind != Kind::number) wrong_type(name, "a number", value);
  return value.number;
}

long to_integer(const std::string& name, const Options::Value& value) {
  if (value.kind != Kind::number) wrong_type(name, "an integer", value);
  const double v = value.number;
  if (v != std::trunc(v)) wrong_type(name, "an integer", value);
  // [-2^63, 2^63) is exactly the doubles a 64-bit long can hold.
  if (v < -9223372036854775808.0 || v >= 9223372036854775808.0) {
    throw std::invalid_argument("option " + in_quotes(name) + " is out of the integer range, got " +
                                format_number(v));
  }
  return static_cast<long>(v);
}

bool to_flag(const std::string& name, const Options::Value& value) {
  if (value.kind == Kind::number) {
    if (value.number == 0.0) return false;
    if (value.number == 1.0) return true;
  } else if (value.kind == Kind::text) {
    // "TRUE"/"FALSE" is how R spells a logical turned into a string.
    if (value.text == "true" || value.text == "TRUE") return true;
    if (value.text == "false" || value.text == "FALSE") return false;
  }
  wrong_type(name, "a flag (0/1 or \"true\"/\"false\")", value);
}

std::string to_text(const std::string& name, const Options::Value& value) {
  if (value.kind != Kind::text) wrong_type(name, "a string", value);
  return value.text;
}

// An empty list of either kind is an empty list of both: JSON's [] and R's
// zero-length vectors do not reliably keep their element type.
bool is_empty_list(const Options::Value& value) {
  return (value.kind == Kind::numbers && value.numbers.empty()) ||
         (value.kind == Kind::texts && value.texts.empty());
}

std::vector<double> to_numbers(const std::string& name, const Options::Value& value) {
  if (value.kind == Kind::numbers) return value.numbers;
  if (value.kind == Kind::number) return {value.number};
  if (is_empty_list(value)) return {};
  wrong_type(name, "a list of numbers", value);
}

std::vector<std::string> to_texts(const std::string& name, const Options::Value& value) {
  if (value.kind == Kind::texts) return value.texts;
  if (value.kind == Kind::text) return {value.text};
  if (is_empty_list(value)) return {};
  wrong_type(name, "a list of strings", value);
}

void check_key(const std::string& key) {
  if (key.empty()) throw std::invalid_argument("option names must not be empty");
}

// A fresh value of one kind: every other field is left empty, so that a value
// that changes kind keeps nothing of its old contents.
Options::Value value_of_kind(Kind kind) {
  Options::Value value;
  value.kind = kind;
  value.is_number = kind == Kind::number;
  return value;
}

}  // namespace

// ------------------------------------------------------------------- set ---
Options& Options::set(const std::string& key, double value) {
  check_key(key);
  // Rejected here rather than at save time: the caller that passed NA or Inf
  // is the one who can fix it, and JSON could not store it anyway.
  if (!std::isfinite(value)) {
    throw std::invalid_argument("option " + in_quotes(path(key)) + " must be a finite number, got " +
                                format_number(value));
  }
  Value slot = value_of_kind(Kind::number);
  slot.number = value;
  values_[key] = std::move(slot);
  return *this;
}

Options& Options::set(const std::string& key, const std::string& value) {
  check_key(key);
  Value slot = value_of_kind(Kind::text);
  slot.text = value;
  values_[key] = std::move(slot);
  return *this;
}

Options& Options::set(const std::string& key, std::vector<double> values) {
  check_key(key);
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      throw std::invalid_argument("option " + in_quotes(path(key)) + " must hold finite numbers, got " +
                                  format_number(values[i]) + " at element " + std::to_string(i + 1));
    }
  }
  Value slot = value_of_kind(Kind::numbers);
  slot.numbers = std::move(values);
  values_[key] = std::move(slot);
  return *this;
}

Options& Options::set(const std::string& key, std::vector<std::string> values) {
  check_key(key);
  Value slot = value_of_kind(Kind::texts);
  slot.texts = std::move(values);
  values_[key] = std::move(slot);
  return *this;
}

Options& Options::set(const std::string& key, const Options& nested) {
  check_key(key);
  // Copied before values_ changes, so o.set("k", o) stores o as it was.
  auto stored = std::make_shared<Options>(nested);
  stored->prefix_.clear();  // where it sits is known from the parent
  Value slot = value_of_kind(Kind::options);
  slot.nested = std::move(stored);
  values_[key] = std::move(slot);
  return *this;
}

// ------------------------------------------------------------------ read ---
const Options::Value& Options::require(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw std::invalid_argument("option " + in_quotes(path(key)) + " is missing");
  return it->second;
}

double Options::number(const std::string& key) const { return to_number(path(key), require(key)); }

double Options::number(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_number(path(key), it->second);
}

long Options::integer(const std::string& key) const { return to_integer(path(key), require(key)); }

long Options::integer(const std::string& key, long fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_integer(path(key), it->second);
}

long Options::positive(const std::string& key) const {
  const long v = integer(key);
  if (v < 1) {
    throw std::invalid_argument("setting " + in_quotes(path(key)) + " must be at least 1, got " + std::to_string(v));
  }
  return v;
}

bool Options::flag(const std::string& key, bool fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_flag(path(key), it->second);
}

std::string Options::text(const std::string& key) const { return to_text(path(key), require(key)); }

std::string Options::text(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_text(path(key), it->second);
}

std::vector<double> Options::numbers(const std::string& key) const {
  return to_numbers(path(key), require(key));
}

std::vector<double> Options::numbers(const std::string& key, const std::vector<double>& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_numbers(path(key), it->second);
}

std::vector<std::string> Options::texts(const std::string& key) const {
  return to_texts(path(key), require(key));
}

std::vector<std::string> Options::texts(const std::string& key,
                                        const std::vector<std::string>& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_texts(path(key), it->second);
}

Options Options::child(const std::string& key) const {
  const Value& value = require(key);
  if (value.kind != Kind::options) wrong_type(path(key), "nested options", value);
  Options out = *value.nested;
  out.prefix_ = path(key) + ".";
  return out;
}

// ----------------------------------------------------------------- merge ---
Options Options::merged(const Options& overrides, bool known_only) const {
  Options out = *this;
  // Defaults merged with a child's settings name their keys like the child,
  // e.g. defaults.merged(spec.child("backbone"), true).
  if (out.prefix_.empty()) out.prefix_ = overrides.prefix_;
  out.merge_into(overrides, known_only);
  return out;
}

void Options::merge_into(const Options& overrides, bool known_only) {
  for (const auto& [key, value] : overrides.values_) {
    auto it = values_.find(key);
    if (it == values_.end()) {
      if (known_only) {
        std::string known;
        for (const auto& entry : values_) {
          if (!known.empty()) known += ", ";
          known += path(entry.first);
        }
        throw std::invalid_argument("unknown option " + in_quotes(path(key)) + "; known options: " +
                                    (known.empty() ? "(none)" : known));
      }
      values_.emplace(key, value);
    } else if (it->second.kind == Kind::options && value.kind == Kind::options) {
      // Nested sets are never modified in place (copies share them): merge
      // into a copy and store that.
      Options inner = *it->second.nested;
      inner.prefix_ = path(key) + ".";
      inner.merge_into(*value.nested, known_only);
      set(key, inner);
    } else {
      it->second = value;
    }
  }
}

// ------------------------------------------------------------------ JSON ---
// Friend of Options, so that nested sets are built with their path prefix
// and errors deep inside name the full key.
struct OptionsJson {
  static Json write(const Options& options) {
    Json object = Json::object();
    for (const auto& [key, value] : options.values_) {
      switch (value.kind) {
        case Kind::number: object[key] = number(value.number); break;
        case Kind::text: object[key] = value.text; break;
        case Kind::numbers: {
          Json array = Json::array();
          for (double v : value.numbers) array.push_back(number(v));
          object[key] = std::move(array);
          break;
        }
        case Kind::texts: object[key] = value.texts; break;
        case Kind::options: object[key] = write(*value.nested); break;
      }
    }
    return object;
  }

  // `prefix` is the path of `object` ("" at the top, "backbone." inside).
  static Options read(const Json& object, const std::string& prefix) {
    Options out;
    out.prefix_ = prefix;  // so that set()'s own errors name the full path
    for (const auto& [key, value] : object.items()) {
      const std::string name = prefix + key;
      switch (value.type()) {
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned:
        case Json::value_t::number_float: out.set(key, value.get<double>()); break;
        case Json::value_t::boolean: out.set(key, value.get<bool>() ? 1.0 : 0.0); break;
        case Json::value_t::string: out.set(key, value.get<std::string>()); break;
        case Json::value_t::array: read_array(out, key, name, value); break;
        case Json::value_t::object: out.set(key, read(value, name + ".")); break;
        default:  // null; binary and discarded never come out of parse()
          throw std::invalid_argument("option " + in_quotes(name) +
                                      " must be a number, a string, a list or an object, got " +
                                      value.type_name());
      }
    }
    out.prefix_.clear();
    return out;
  }

 private:
  // Integral doubles below 2^53 are written as JSON integers: nlohmann would
  // write 3.0 as "3.0", and counts and sizes read better as "3". Anything else
  // (-0 included, to keep its sign) stays a double, written so that it reads
  // back exactly.
  static Json number(double v) {
    constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
    if (v == std::trunc(v) && std::fabs(v) < kExactIntegers && !(v == 0.0 && std::signbit(v))) {
      return static_cast<std::int64_t>(v);
    }
    return v;
  }

  static void read_array(Options& out, const std::string& key, const std::string& name, const Json& array) {
    bool any_number = false, any_string = false;
    for (const Json& element : array) {
      if (element.is_number() || element.is_boolean()) {
        any_number = true;
      } else if (element.is_string()) {
        any_string = true;
      } else {
        throw std::invalid_argument("option " + in_quotes(name) +
                                    " must be a list of numbers or a list of strings, but holds " +
                                    (element.is_null() ? "null" : std::string("an ") + element.type_name()));
      }
    }
    if (any_number && any_string) {
      throw std::invalid_argument("option " + in_quotes(name) +
                                  " must be a list of numbers or a list of strings, but mixes both");
    }
    if (any_string) {
      out.set(key, array.get<std::vector<std::string>>());
      return;
    }
    std::vector<double> numbers;  // also [] : see Options::numbers()/texts()
    numbers.reserve(array.size());
    for (const Json& element : array) {
      numbers.push_back(element.is_boolean() ? (element.get<bool>() ? 1.0 : 0.0) : element.get<double>());
    }
    out.set(key, std::move(numbers));
  }
};

std::string Options::to_json() const {
  try {
    return OptionsJson::write(*this).dump();
  } catch (const Json::type_error& e) {
    // The only dump() error: a string that is not valid UTF-8.
    throw std::invalid_argument(std::string("options cannot be written as JSON: ") + e.what());
  }
}

namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// rest ("parse error at line 1, column 8: ...") is what a user can act on.
std::string without_exception_id(const std::string& message) {
  const size_t end = message.find("] ");
  return message.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? message.substr(end + 2)
                                                                                  : message;
}

// nlohmann keeps the last of repeated object keys; an option given twice is a
// mistake (which one was meant?), so parse() reports it through this
// callback, naming the key by its path. The state lives outside the callback
// because nlohmann copies the std::function it is given.
struct OpenObject {
  std::set<std::string> seen;
  std::string key;  // the key being read, for the path of a repeated key below it
};

Json::parser_callback_t repeated_key_check(std::vector<OpenObject>& open) {
  return [&open](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: open.emplace_back(); break;
      case Json::parse_event_t::object_end: open.pop_back(); break;
      case Json::parse_event_t::key: {
        OpenObject& object = open.back();
        object.key = parsed.get<std::string>();
        if (!object.seen.insert(object.key).second) {
          std::string name;
          for (const OpenObject& level : open) name += (name.empty() ? "" : ".") + level.key;
          throw std::invalid_argument("invalid options JSON: option " + in_quotes(name) + " is given twice");
        }
        break;
      }
      default: break;
    }
    return true;  // keep every value
  };
}

}  // namespace

Options Options::from_json(const std::string& text) {
  Json document;
  std::vector<OpenObject> open;
  try {
    document = Json::parse(text, repeated_key_check(open));
  } catch (const Json::parse_error& e) {
    // nlohmann counts bytes from 1; the offset of the offending byte is one less.
    throw std::invalid_argument("invalid options JSON at byte offset " +
                                std::to_string(e.byte > 0 ? e.byte - 1 : 0) + ": " +
                                without_exception_id(e.what()));
  } catch (const Json::exception& e) {
    // Valid syntax the library cannot hold, e.g. out_of_range for 1e400.
    throw std::invalid_argument("invalid options JSON: " + without_exception_id(e.what()));
  }
  if (!document.is_object()) {
    throw std::invalid_argument(std::string("options JSON must be an object, got ") + document.type_name());
  }
  return OptionsJson::read(document, "");
}

}  // namespace exprflow
