// Options: a flat, ordered map of named settings (numbers or strings).
//
// Model compositions, training and sampling settings travel as Options so that
// one registry entry can declare its defaults, the R glue can pass a named list
// without knowing any model, and a saved model can write its settings as JSON.
// This header is torch-free: the R glue includes it.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace exprflow {

class Options {
 public:
  struct Value {
    bool is_number = true;
    double number = 0.0;
    std::string text;
  };

  Options() = default;

  Options& set(const std::string& key, double value);
  Options& set(const std::string& key, const std::string& value);
  Options& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  Options& set(const std::string& key, int value) { return set(key, static_cast<double>(value)); }

  bool has(const std::string& key) const { return values_.count(key) > 0; }
  const std::map<std::string, Value>& values() const { return values_; }

  // Typed reads; throw std::invalid_argument naming the key when the stored
  // value has the wrong type or (for the versions without a default) is absent.
  double number(const std::string& key) const;
  double number(const std::string& key, double fallback) const;
  long integer(const std::string& key) const;
  long integer(const std::string& key, long fallback) const;
  // A whole number >= 1; throws std::invalid_argument naming the key otherwise.
  long positive(const std::string& key) const;
  bool flag(const std::string& key, bool fallback) const;
  std::string text(const std::string& key) const;
  std::string text(const std::string& key, const std::string& fallback) const;

  // Values of `overrides` replace ours; keys we do not know are an error when
  // `known_only` is set (catches typos such as "n_layer" for "n_layers").
  Options merged(const Options& overrides, bool known_only) const;

  // Flat JSON object; numbers written with full (round-trip) precision.
  std::string to_json() const;
  static Options from_json(const std::string& json);

 private:
  std::map<std::string, Value> values_;
};

}  // namespace exprflow
