#include "exprflow/options.hpp"

#include <cmath>
#include <stdexcept>

#include "io/json.hpp"

namespace exprflow {

namespace {

std::string quoted(const std::string& key) { return "'" + key + "'"; }

std::string describe(const Options::Value& value) {
  if (value.is_number) return "number " + json::format_number(value.number);
  return "string '" + value.text + "'";
}

[[noreturn]] void wrong_type(const std::string& key, const char* expected,
                             const Options::Value& value) {
  throw std::invalid_argument("option " + quoted(key) + " must be " + expected + ", got " +
                              describe(value));
}

const Options::Value& require(const std::map<std::string, Options::Value>& values,
                              const std::string& key) {
  auto it = values.find(key);
  if (it == values.end()) throw std::invalid_argument("option " + quoted(key) + " is missing");
  return it->second;
}

double to_number(const std::string& key, const Options::Value& value) {
  if (!value.is_number) wrong_type(key, "a number", value);
  return value.number;
}

long to_integer(const std::string& key, const Options::Value& value) {
  if (!value.is_number) wrong_type(key, "an integer", value);
  double v = value.number;
  if (v != std::trunc(v)) wrong_type(key, "an integer", value);
  // [-2^63, 2^63) is exactly the doubles a 64-bit long can hold.
  if (v < -9223372036854775808.0 || v >= 9223372036854775808.0) {
    throw std::invalid_argument("option " + quoted(key) + " is out of the integer range, got " +
                                json::format_number(v));
  }
  return static_cast<long>(v);
}

bool to_flag(const std::string& key, const Options::Value& value) {
  if (value.is_number) {
    if (value.number == 0.0) return false;
    if (value.number == 1.0) return true;
  } else {
    // "TRUE"/"FALSE" is how R spells a logical turned into a string.
    if (value.text == "true" || value.text == "TRUE") return true;
    if (value.text == "false" || value.text == "FALSE") return false;
  }
  wrong_type(key, "a flag (0/1 or \"true\"/\"false\")", value);
}

std::string to_text(const std::string& key, const Options::Value& value) {
  if (value.is_number) wrong_type(key, "a string", value);
  return value.text;
}

void check_key(const std::string& key) {
  if (key.empty()) throw std::invalid_argument("option names must not be empty");
}

}  // namespace

Options& Options::set(const std::string& key, double value) {
  check_key(key);
  // Rejected here rather than at save time: the caller that passed NA or Inf
  // is the one who can fix it, and JSON could not store it anyway.
  if (!std::isfinite(value)) {
    throw std::invalid_argument("option " + quoted(key) + " must be a finite number, got " +
                                json::format_number(value));
  }
  Value& slot = values_[key];
  slot.is_number = true;
  slot.number = value;
  slot.text.clear();
  return *this;
}

Options& Options::set(const std::string& key, const std::string& value) {
  check_key(key);
  Value& slot = values_[key];
  slot.is_number = false;
  slot.number = 0.0;
  slot.text = value;
  return *this;
}

double Options::number(const std::string& key) const {
  return to_number(key, require(values_, key));
}

double Options::number(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_number(key, it->second);
}

long Options::integer(const std::string& key) const {
  return to_integer(key, require(values_, key));
}

long Options::integer(const std::string& key, long fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_integer(key, it->second);
}

long Options::positive(const std::string& key) const {
  const long v = integer(key);
  if (v < 1) {
    throw std::invalid_argument("setting '" + key + "' must be at least 1, got " + std::to_string(v));
  }
  return v;
}

bool Options::flag(const std::string& key, bool fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_flag(key, it->second);
}

std::string Options::text(const std::string& key) const {
  return to_text(key, require(values_, key));
}

std::string Options::text(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : to_text(key, it->second);
}

Options Options::merged(const Options& overrides, bool known_only) const {
  Options out = *this;
  for (const auto& [key, value] : overrides.values_) {
    if (known_only && !has(key)) {
      std::string known;
      for (const auto& entry : values_) {
        if (!known.empty()) known += ", ";
        known += entry.first;
      }
      throw std::invalid_argument("unknown option " + quoted(key) + "; known options: " +
                                  (known.empty() ? "(none)" : known));
    }
    out.values_[key] = value;
  }
  return out;
}

std::string Options::to_json() const {
  json::Value object = json::Value::object();
  for (const auto& [key, value] : values_) {
    if (value.is_number) {
      object.set(key, value.number);
    } else {
      object.set(key, value.text);
    }
  }
  return json::dump(object);
}

Options Options::from_json(const std::string& text) {
  json::Value document;
  try {
    document = json::parse(text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("invalid options JSON: ") + e.what());
  }
  if (!document.is_object()) {
    throw std::invalid_argument(std::string("options JSON must be a flat object, got ") +
                                document.type_name());
  }
  Options out;
  for (const auto& [key, value] : document.as_object()) {
    switch (value.type()) {
      case json::Value::Type::number: out.set(key, value.as_number()); break;
      case json::Value::Type::string: out.set(key, value.as_string()); break;
      case json::Value::Type::boolean: out.set(key, value.as_bool() ? 1.0 : 0.0); break;
      case json::Value::Type::null:
        throw std::invalid_argument("option " + quoted(key) +
                                    " must be a number or a string, got null");
      case json::Value::Type::array:
      case json::Value::Type::object:
        throw std::invalid_argument("options JSON must be a flat object: option " + quoted(key) +
                                    " holds " + (value.is_array() ? "an array" : "an object"));
    }
  }
  return out;
}

}  // namespace exprflow
