// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include <google/protobuf/map.h>
#include <google/protobuf/repeated_ptr_field.h>

#include "containerd/services/snapshots/v1/snapshots.pb.h"
#include "containerd/types/mount.pb.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// Conversions between the containerd wire messages and the snapshotter's plain structs.
// Pure functions.

Labels LabelsFromProto(const google::protobuf::Map<std::string, std::string>& labels);
void LabelsToProto(const Labels& labels, google::protobuf::Map<std::string, std::string>* out);

void InfoToProto(const SnapshotInfo& info, containerd::services::snapshots::v1::Info* out);
SnapshotInfo InfoFromProto(const containerd::services::snapshots::v1::Info& info);

void MountsToProto(const std::vector<MountSpec>& mounts,
                   google::protobuf::RepeatedPtrField<containerd::types::Mount>* out);
std::vector<MountSpec> MountsFromProto(
    const google::protobuf::RepeatedPtrField<containerd::types::Mount>& mounts);

}  // namespace slipstream::plugin
