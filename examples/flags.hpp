// Command-line flags for the examples: `--name=value` or `--name value`, `--flag` for
// booleans, `--help`. A bad flag prints a message naming it and the usage to stderr; the
// caller exits with code 2.
//
// Example:
//   FlagSet flags("proxy", "An instrumented reverse proxy.");
//   flags.add("port", &port, "port to listen on");
//   if (auto exit_code = flags.parse(argc, argv)) return *exit_code;
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ccproxy::observability::examples {

// Not synchronised: built and parsed once in main().
class FlagSet {
 public:
  FlagSet(std::string program, std::string description)
      : program_(std::move(program)), description_(std::move(description)) {}

  void add(std::string name, std::string* target, std::string help) {
    flags_.push_back({std::move(name), target, std::move(help)});
  }
  void add(std::string name, std::int64_t* target, std::string help) {
    flags_.push_back({std::move(name), target, std::move(help)});
  }
  void add(std::string name, double* target, std::string help) {
    flags_.push_back({std::move(name), target, std::move(help)});
  }
  void add(std::string name, bool* target, std::string help) {
    flags_.push_back({std::move(name), target, std::move(help)});
  }

  // Parses argv. Returns nothing when the program should go on, 0 after --help, 2 after a
  // bad flag (the message is already printed).
  std::optional<int> parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_usage(stdout);
        return 0;
      }
      if (arg.substr(0, 2) != "--") return fail("unexpected argument '" + std::string(arg) + "'");
      arg.remove_prefix(2);
      std::optional<std::string> value;
      if (auto eq = arg.find('='); eq != std::string_view::npos) {
        value = std::string(arg.substr(eq + 1));
        arg = arg.substr(0, eq);
      }
      Flag* flag = find(arg);
      if (flag == nullptr) return fail("unknown flag '--" + std::string(arg) + "'");
      if (auto* b = std::get_if<bool*>(&flag->target)) {
        if (!value) {
          **b = true;
        } else if (*value == "true" || *value == "1") {
          **b = true;
        } else if (*value == "false" || *value == "0") {
          **b = false;
        } else {
          return fail("flag '--" + flag->name + "' takes true or false, not '" + *value + "'");
        }
        continue;
      }
      if (!value) {
        if (i + 1 >= argc) return fail("flag '--" + flag->name + "' needs a value");
        value = argv[++i];
      }
      if (auto error = assign(*flag, *value)) return fail(*error);
    }
    return std::nullopt;
  }

  // A message naming a bad setting found after parsing (out of range, inconsistent): prints
  // it with the usage hint and returns 2.
  int fail_setting(const std::string& message) const {
    std::fprintf(stderr, "%s: %s\n", program_.c_str(), message.c_str());
    std::fprintf(stderr, "Run '%s --help' for the flags.\n", program_.c_str());
    return 2;
  }

  void print_usage(std::FILE* out) const {
    std::fprintf(out, "Usage: %s [flags]\n\n%s\n\nFlags:\n", program_.c_str(),
                 description_.c_str());
    for (const Flag& flag : flags_) {
      std::string left = "--" + flag.name;
      if (!std::holds_alternative<bool*>(flag.target)) left += "=" + type_name(flag);
      std::fprintf(out, "  %-32s %s (default: %s)\n", left.c_str(), flag.help.c_str(),
                   default_text(flag).c_str());
    }
    std::fprintf(out, "  %-32s %s\n", "--help", "print this help and exit");
  }

 private:
  using Target = std::variant<std::string*, std::int64_t*, double*, bool*>;
  struct Flag {
    std::string name;
    Target target;
    std::string help;
  };

  Flag* find(std::string_view name) {
    for (Flag& flag : flags_) {
      if (flag.name == name) return &flag;
    }
    return nullptr;
  }

  static std::optional<std::string> assign(Flag& flag, const std::string& value) {
    if (auto* s = std::get_if<std::string*>(&flag.target)) {
      **s = value;
      return std::nullopt;
    }
    const char* begin = value.c_str();
    char* end = nullptr;
    errno = 0;
    if (auto* n = std::get_if<std::int64_t*>(&flag.target)) {
      long long v = std::strtoll(begin, &end, 10);
      if (value.empty() || *end != '\0' || errno != 0) {
        return "flag '--" + flag.name + "' takes an integer, not '" + value + "'";
      }
      **n = v;
      return std::nullopt;
    }
    auto* d = std::get<double*>(flag.target);
    double v = std::strtod(begin, &end);
    if (value.empty() || *end != '\0' || errno != 0) {
      return "flag '--" + flag.name + "' takes a number, not '" + value + "'";
    }
    *d = v;
    return std::nullopt;
  }

  static std::string type_name(const Flag& flag) {
    if (std::holds_alternative<std::string*>(flag.target)) return "TEXT";
    if (std::holds_alternative<std::int64_t*>(flag.target)) return "INT";
    return "NUMBER";
  }

  static std::string default_text(const Flag& flag) {
    if (auto* s = std::get_if<std::string*>(&flag.target)) {
      return (*s)->empty() ? "none" : **s;
    }
    if (auto* n = std::get_if<std::int64_t*>(&flag.target)) return std::to_string(**n);
    if (auto* b = std::get_if<bool*>(&flag.target)) return **b ? "true" : "false";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", *std::get<double*>(flag.target));
    return buf;
  }

  int fail(const std::string& message) const { return fail_setting(message); }

  std::string program_;
  std::string description_;
  std::vector<Flag> flags_;
};

}  // namespace ccproxy::observability::examples
