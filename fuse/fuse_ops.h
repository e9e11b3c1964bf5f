// SPDX-License-Identifier: Apache-2.0
#pragma once

// FUSE_USE_VERSION comes from the slipstream_fuse target (fuse/CMakeLists.txt).
#include <fuse_lowlevel.h>

namespace slipstream::fuse {

// The request handlers of FuseServer as libfuse's operation table. Each handler finds its
// FuseServer through fuse_req_userdata, calls the LayerFs and answers exactly once; writing
// requests are answered EROFS. Internal to FuseServer; the table is immutable (thread-safe).
const fuse_lowlevel_ops& FuseOperations();

}  // namespace slipstream::fuse
