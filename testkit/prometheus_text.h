// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::testkit {

// A scrape in the Prometheus text exposition format (0.0.4), checked the way a scraper
// reads it: every sample's family has a `# TYPE` line before it (histogram samples end in
// _bucket/_sum/_count), names and label names are valid identifiers, label values are
// quoted with \\ \" \n escapes, and every value parses as a float (+Inf, -Inf, NaN too).
struct PrometheusScrape {
  // "name" or `name{a="x",b="y"}` (labels as written, unescaped values re-quoted) -> value.
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family name -> counter | gauge | histogram ...

  // The value of `key` (as in `samples`), or -1 when absent.
  double Get(const std::string& key) const;
};

// Parses `text`. InvalidArgument naming the line for anything a scraper would reject.
absl::StatusOr<PrometheusScrape> ParsePrometheusText(std::string_view text);

}  // namespace slipstream::testkit
