// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace slipstream::cri {

// A container's output as the CRI log file recorded it, one string per stream.
struct ContainerOutput {
  std::string stdout_data;
  std::string stderr_data;
  // When the runtime logged the first record of either stream (its timestamp); InfinitePast
  // for an empty log.
  absl::Time first_output = absl::InfinitePast();
};

// Parses a CRI container log (the format kubelet and containerd share):
//   <RFC3339Nano timestamp> <stdout|stderr> <tags> <content>\n
// where the first ':'-separated tag is F (the line ends here: content + "\n") or P (a partial
// line: content continues in the stream's next record, no newline added). Each stream is
// reassembled on its own, so interleaved partial lines of stdout and stderr come out whole.
// A last record without its trailing newline is taken as it is. Empty input gives empty
// output. InvalidArgument naming the 1-based line for a malformed record (bad timestamp,
// unknown stream or tag). Pure function.
absl::StatusOr<ContainerOutput> ParseContainerLog(std::string_view text);

}  // namespace slipstream::cri
