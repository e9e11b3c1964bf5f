// SPDX-License-Identifier: Apache-2.0
#include "cri/container_log.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/strings.h"

namespace slipstream::cri {
namespace {

// Splits off the text up to the next space; false when there is none.
bool NextField(std::string_view* rest, std::string_view* field) {
  size_t space = rest->find(' ');
  if (space == std::string_view::npos) return false;
  *field = rest->substr(0, space);
  rest->remove_prefix(space + 1);
  return true;
}

absl::Status BadLine(size_t number, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("container log line ", number, ": ", AV(what)));
}

}  // namespace

absl::StatusOr<ContainerOutput> ParseContainerLog(std::string_view text) {
  ContainerOutput out;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);

    std::string_view rest = line, timestamp, stream, tags;
    if (!NextField(&rest, &timestamp) || !NextField(&rest, &stream)) {
      return BadLine(number, "want \"<time> <stream> <tag> <content>\"");
    }
    // The content may be empty; containerd still writes the separating space, but a writer
    // that drops it is read the same way.
    if (!NextField(&rest, &tags)) {
      tags = rest;
      rest = {};
    }
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, AV(timestamp), &t, &err)) {
      return BadLine(number, absl::StrCat("bad timestamp \"", AV(timestamp), "\""));
    }
    if (number == 1) out.first_output = t;
    std::string* sink = nullptr;
    if (stream == "stdout") {
      sink = &out.stdout_data;
    } else if (stream == "stderr") {
      sink = &out.stderr_data;
    } else {
      return BadLine(number, absl::StrCat("unknown stream \"", AV(stream), "\""));
    }
    std::string_view tag = tags.substr(0, tags.find(':'));
    if (tag == "F") {
      absl::StrAppend(sink, AV(rest), "\n");
    } else if (tag == "P") {
      absl::StrAppend(sink, AV(rest));
    } else {
      return BadLine(number, absl::StrCat("unknown tag \"", AV(tags), "\""));
    }
  }
  return out;
}

}  // namespace slipstream::cri
