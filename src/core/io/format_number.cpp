#include <charconv>
#include <cmath>
#include <string>

#include "io/json.hpp"

namespace exprflow {

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  constexpr double kExactIntegers = 9007199254740992.0;  // 2^53
  const double magnitude = std::fabs(value);
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
  const std::to_chars_result result =
      magnitude >= 1e-6 && magnitude < kExactIntegers
          ? std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed)
          : std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

}  // namespace exprflow
