#pragma once
// Errors: every failure a user can cause (bad file, bad flag, too-long prompt) is an InputError
// with a message that names the thing and what is wrong; the CLI maps it to exit code 2.
// Error is for everything else (a bug or a resource failure); the CLI maps it to exit code 1.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace deltainfer {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class InputError : public Error {
 public:
  using Error::Error;
};

template <typename... Args>
[[noreturn]] void throw_input_error(fmt::format_string<Args...> format, Args&&... args) {
  throw InputError(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace deltainfer
