// A benchmark's command line: `--name value` options and `--name` switches,
// read by name. finish() refuses whatever no read asked for (a misspelt
// option, a value missing after its option, --help) by printing the usage
// and exiting with status 2: a benchmark that ignored an unknown argument
// would run every configuration it has, which can take many minutes.
// Header-only and torch-free, like each bench/*.cpp's main().
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace exprflow::bench {

class CommandLine {
 public:
  CommandLine(int argc, char** argv, std::string usage)
      : args_(argv + 1, argv + argc), read_(args_.size(), false), usage_(std::move(usage)) {}

  // Every value given after `name` (an option that may repeat), in order.
  std::vector<std::string> texts(const std::string& name) {
    std::vector<std::string> out;
    for (size_t a = 0; a < args_.size(); ++a) {
      if (args_[a] != name || read_[a]) continue;
      read_[a] = true;
      if (a + 1 >= args_.size()) fail(name + " needs a value");
      read_[a + 1] = true;
      out.push_back(args_[++a]);
    }
    return out;
  }
  // The value after `name` (the last one if it is given twice), or `fallback`.
  std::string text(const std::string& name, const std::string& fallback) {
    const std::vector<std::string> values = texts(name);
    return values.empty() ? fallback : values.back();
  }
  // A whole number after `name`, or `fallback`.
  long number(const std::string& name, long fallback) {
    const std::string value = text(name, "");
    if (value.empty()) return fallback;
    char* end = nullptr;
    const long out = std::strtol(value.c_str(), &end, 10);
    if (*end != '\0') fail(name + " takes a whole number, got '" + value + "'");
    return out;
  }
  // Whether the switch `name` is given.
  bool has(const std::string& name) {
    bool found = false;
    for (size_t a = 0; a < args_.size(); ++a) {
      if (args_[a] == name && !read_[a]) found = read_[a] = true;
    }
    return found;
  }
  // The arguments that are not options (e.g. a data folder), in order.
  std::vector<std::string> positional() {
    std::vector<std::string> out;
    for (size_t a = 0; a < args_.size(); ++a) {
      if (read_[a] || args_[a].rfind("--", 0) == 0) continue;
      read_[a] = true;
      out.push_back(args_[a]);
    }
    return out;
  }
  // Exits with the usage when an argument was not read.
  void finish() const {
    for (size_t a = 0; a < args_.size(); ++a) {
      if (!read_[a]) fail(args_[a] == "--help" ? "" : "unknown argument '" + args_[a] + "'");
    }
  }
  // Exits with `message` (when not empty) and the usage.
  [[noreturn]] void fail(const std::string& message) const {
    if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
    std::fprintf(stderr, "usage: %s\n", usage_.c_str());
    std::exit(2);
  }

 private:
  std::vector<std::string> args_;
  std::vector<bool> read_;
  std::string usage_;
};

}  // namespace exprflow::bench
