// JSON for model files and option sets: nlohmann-json (Debian:
// nlohmann-json3-dev), header-only.
//
// ordered_json keeps an object's members in insertion order, so a saved
// model's meta reads in the order it was written (format, version, spec,
// genes, ...). nlohmann dumps non-finite numbers as null, strings must be
// valid UTF-8 (dump() and parse() throw otherwise), and every error is a
// nlohmann::json::exception, which derives from std::exception.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace exprflow {

using Json = nlohmann::ordered_json;

// The shortest text that reads back as the same double, for error messages:
// integral values without exponent or decimal point ("1000000", not
// "1000000.0" as nlohmann writes a double), plain decimals down to 1e-6,
// exponent form beyond; "nan", "inf" and "-inf" for non-finite values.
// Locale-independent.
std::string format_number(double value);

}  // namespace exprflow
