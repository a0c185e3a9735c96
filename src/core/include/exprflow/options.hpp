// Options: an ordered map of named settings. A setting is a number, a string,
// a list of numbers, a list of strings, or a nested option set (per-stage
// settings such as {"backbone": {"n_layers": 4}}).
//
// Model compositions, training and sampling settings travel as Options so that
// one registry entry can declare its defaults, the R glue can pass a named list
// without knowing any model, and a saved model can write its settings as JSON.
// This header is torch- and JSON-library-free: the R glue includes it.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace exprflow {

class Options {
 public:
  struct Value {
    enum class Kind { number, text, numbers, texts, options };
    Kind kind = Kind::number;
    // Mirrors kind == Kind::number; kept for callers written when a setting
    // was either a number or a string.
    bool is_number = true;
    double number = 0.0;               // Kind::number
    std::string text;                  // Kind::text
    std::vector<double> numbers;       // Kind::numbers
    std::vector<std::string> texts;    // Kind::texts
    // Kind::options. Shared and never modified after it is stored, so copying
    // an option set stays cheap and copies cannot affect each other.
    std::shared_ptr<const Options> nested;
  };

  Options() = default;

  // Every set() replaces whatever the key held, whatever its type. Numbers
  // must be finite (JSON cannot store NaN or infinity); keys must be non-empty.
  Options& set(const std::string& key, double value);
  Options& set(const std::string& key, const std::string& value);
  Options& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  Options& set(const std::string& key, int value) { return set(key, static_cast<double>(value)); }
  Options& set(const std::string& key, std::vector<double> values);
  Options& set(const std::string& key, std::vector<std::string> values);
  // Braced lists: set("dims", {256, 128}), set("genes", {"CD3E", "MS4A1"}).
  // Without these, {"a", "b"} would be ambiguous with std::string's
  // (first, last) iterator constructor.
  Options& set(const std::string& key, std::initializer_list<double> values) {
    return set(key, std::vector<double>(values));
  }
  Options& set(const std::string& key, std::initializer_list<std::string> values) {
    return set(key, std::vector<std::string>(values));
  }
  Options& set(const std::string& key, const Options& nested);

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  const std::map<std::string, Value>& values() const { return values_; }

  // Typed reads; throw std::invalid_argument naming the key when the stored
  // value has the wrong type or (for the versions without a default) is absent.
  // Keys are named with their full path ('backbone.n_layers') when read from
  // an option set obtained through child().
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  long integer(const std::string& key) const;
  long integer(const std::string& key, long fallback) const;
  // A whole number >= 1; throws std::invalid_argument naming the key otherwise.
  long positive(const std::string& key) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string text(const std::string& key) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  // Lists. A single number (or string) reads as a list of one, since that is
  // what R's length-1 vectors and JSON scalars become; an empty list reads as
  // an empty list of either type, since JSON's [] does not say which it was.
  std::vector<double> numbers(const std::string& key) const;
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback) const;
  std::vector<std::string> texts(const std::string& key) const;
  std::vector<std::string> texts(const std::string& key, const std::vector<std::string>& fallback) const;
  // A nested option set (a copy), whose own errors name keys as 'key.inner'.
  Options child(const std::string& key) const;

  // Values of `overrides` replace ours; keys we do not know are an error when
  // `known_only` is set (catches typos such as "n_layer" for "n_layers").
  // Where both sides hold nested options under a key, they are merged the
  // same way, recursively; an unknown nested key is named by its path
  // ('backbone.n_layer'). Any other value replaces ours whole.
  Options merged(const Options& overrides, bool known_only) const;

  // A JSON object: numbers with full (round-trip) precision, lists as arrays,
  // nested options as objects. from_json reads true/false as 1/0, an array of
  // numbers (or booleans) as a number list, an array of strings as a text
  // list, [] as an empty number list; null, mixed and nested arrays, and
  // repeated keys are errors naming the key.
  std::string to_json() const;
  static Options from_json(const std::string& json);

 private:
  friend struct OptionsJson;  // the JSON conversion in io/options.cpp

  // "backbone." for a set obtained as child("backbone") (so its errors name
  // the full path), empty at the top level. Not part of the value: to_json,
  // values() and a set() into a parent ignore it.
  std::string prefix_;
  std::map<std::string, Value> values_;

  std::string path(const std::string& key) const { return prefix_ + key; }
  const Value& require(const std::string& key) const;
  void merge_into(const Options& overrides, bool known_only);
};

}  // namespace exprflow
