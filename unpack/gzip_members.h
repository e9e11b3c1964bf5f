// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "unpack/byte_sink.h"
#include "unpack/decompressor.h"

namespace slipstream::unpack {

// The member framing shared by both gzip backends (internal to unpack/): a gzip stream is one
// or more members back to back; between members the next bytes must be the gzip magic, and
// the input may end only there. A backend implements one member at a time. Not thread-safe.
class GzipMembers : public Decompressor {
 public:
  explicit GzipMembers(ByteSink sink) : sink_(std::move(sink)) {}

  absl::Status Write(std::string_view compressed) final;
  absl::Status Finish() final;
  int64_t bytes_out() const final { return bytes_out_; }

 protected:
  // Resets the inflater to parse a new member from its header on.
  virtual absl::Status BeginMember() = 0;
  // Inflates a prefix of `in`, passing output to Emit(). Sets `consumed` to the bytes of `in`
  // used and `member_done` once the member's trailer has been verified (the bytes after it are
  // then not consumed). DataLoss on corrupt data.
  virtual absl::Status Inflate(std::string_view in, size_t& consumed, bool& member_done) = 0;

  // Hands decompressed bytes to the sink.
  absl::Status Emit(std::string_view out);
  // Position of the next unconsumed input byte in the whole stream, for messages.
  int64_t offset() const { return bytes_in_; }

 private:
  absl::Status WriteImpl(std::string_view data);
  absl::Status Remember(absl::Status s);

  ByteSink sink_;
  bool in_member_ = false;
  int members_ = 0;
  std::string magic_;  // first bytes of a member whose magic is not complete yet
  int64_t bytes_in_ = 0;
  int64_t bytes_out_ = 0;
  absl::Status status_;
};

}  // namespace slipstream::unpack
