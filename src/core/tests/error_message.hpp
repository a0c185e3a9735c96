// What tests of argument checking read: the message an action throws.
#pragma once

#include <exception>
#include <functional>
#include <stdexcept>
#include <string>

namespace exprflow {

// The std::invalid_argument message `f` throws, or a marker when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "<no exception>";
}

// Whether an error message says `part`.
inline bool mentions(const std::string& message, const std::string& part) {
  return message.find(part) != std::string::npos;
}

}  // namespace exprflow
