#pragma once
// ApiError: a request the server answers with an HTTP error status and OpenAI's error object
// {"error": {"message", "type", "param", "code"}}. Thrown anywhere while a request is handled.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace deltainfer::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = {}, std::string code = {})
      : std::runtime_error(message), status_(status), type_(std::move(type)), param_(std::move(param)),
        code_(std::move(code)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_;
  std::string param_;
  std::string code_;
};

// 400 invalid_request_error about `param` (may be empty).
ApiError bad_request(std::string message, std::string param = {}, std::string code = {});

// {"error": {...}}; empty param and code are written as null, as OpenAI does.
nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param,
                          const std::string& code);
nlohmann::json error_body(const ApiError& error);

}  // namespace deltainfer::server
