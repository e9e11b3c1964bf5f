// SPDX-License-Identifier: Apache-2.0
// Small helpers shared by the pull engine's unit and integration tests.
#pragma once

#include <dirent.h>

#include <cstdint>
#include <set>
#include <string>

namespace slipstream::plugin::testing {

// `n` reproducible pseudo-random bytes (an LCG seeded by `seed`).
inline std::string Pseudo(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// Names in `dir` (no "." / ".."); empty when it cannot be opened.
inline std::set<std::string> List(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.insert(n);
  }
  ::closedir(d);
  return out;
}

}  // namespace slipstream::plugin::testing
