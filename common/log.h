// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace slipstream::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// One key=value field. Values are quoted when they contain spaces, quotes or '='.
struct Field {
  template <typename T>
  Field(std::string_view k, const T& v) : key(k), value(absl::StrCat(v)) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  std::string key;
  std::string value;
};

// Process-wide minimum level; messages below it are dropped. Thread-safe.
void SetLevel(Level level);
Level GetLevel();
// Parses "debug", "info", "warn", "error". Returns false when unknown.
bool ParseLevel(std::string_view text, Level* level);

// Writes one structured line to stderr:
//   time=2026-11-27T20:41:13.123Z level=info msg="pull started" image=... layer=...
// Thread-safe; each line is written with a single write(2).
void Write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kDebug, msg, f); }
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kInfo, msg, f); }
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kWarn, msg, f); }
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) { Write(Level::kError, msg, f); }

// Formats one line without writing it (exposed for tests).
std::string Format(Level level, std::string_view msg, std::initializer_list<Field> fields);

}  // namespace slipstream::log
