// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fd.h"

namespace slipstream::fuse {

// The wire protocol between slipstreamd and slipstream-fuse-holder, the small process that
// keeps lazy mode's /dev/fuse descriptors open while slipstreamd restarts or crashes.
//
// Transport: a unix SOCK_SEQPACKET socket; one datagram per message, so no framing. A
// message is a short line of text, optionally carrying one descriptor (SCM_RIGHTS).
//   PUT <key>   + fd   -> OK                 the holder keeps fd under key (replacing one)
//   GET <key>          -> OK + fd | NONE     a duplicate of the held fd
//   DROP <key>         -> OK | NONE          the holder closes and forgets it
//   LIST               -> OK\n<key>\n<key>…  what it holds
//   QUIT               -> OK                 it closes everything and exits
// Any request can be answered `ERR <reason>`. Keys are mountpoints: 1…4096 bytes, no
// newline or NUL.

// Largest message either side sends (a LIST answer is cut to fit).
inline constexpr size_t kHolderMaxMessage = 64 << 10;
inline constexpr size_t kHolderMaxKey = 4096;

enum class HolderOp { kPut, kGet, kDrop, kList, kQuit };

struct HolderRequest {
  HolderOp op = HolderOp::kList;
  std::string key;  // PUT, GET, DROP
};

// Parses a request line. InvalidArgument for an unknown verb, a missing, empty, too long or
// newline-carrying key, or a key given to LIST/QUIT.
absl::StatusOr<HolderRequest> ParseHolderRequest(std::string_view text);
// The line ParseHolderRequest reads back.
std::string FormatHolderRequest(const HolderRequest& request);

// One received datagram: its text and the descriptor it carried (invalid when none).
struct HolderMessage {
  std::string text;
  UniqueFd fd;
};

// Sends `text` (at most kHolderMaxMessage bytes) with `fd` attached when fd >= 0, as one
// datagram. `flags` are sendmsg flags (MSG_NOSIGNAL is always added; MSG_DONTWAIT for a
// server that must not block). Errors: the errno of sendmsg (Unavailable for a peer that
// went away, DeadlineExceeded for a send timeout), InvalidArgument for an oversized text.
absl::Status SendHolderMessage(int sock, std::string_view text, int fd = -1, int flags = 0);

// Receives one datagram. A descriptor arrives close-on-exec; a datagram with more than one
// descriptor has the extra ones closed and is refused. Errors: Unavailable when the peer
// closed the connection (EOF), DataLoss for a truncated datagram, InvalidArgument for more
// than one descriptor, DeadlineExceeded for EAGAIN (a receive timeout, SO_RCVTIMEO, or nothing to
// read on a non-blocking socket), the errno of recvmsg otherwise. An empty datagram reads as EOF.
absl::StatusOr<HolderMessage> ReceiveHolderMessage(int sock);

}  // namespace slipstream::fuse
