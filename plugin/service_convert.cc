// SPDX-License-Identifier: Apache-2.0
#include "plugin/service_convert.h"

namespace slipstream::plugin {
namespace {

namespace v1 = containerd::services::snapshots::v1;

void TimeToProto(absl::Time t, google::protobuf::Timestamp* out) {
  int64_t ns = absl::ToUnixNanos(t);
  // Floor division so times before 1970 still get 0 <= nanos < 1e9, as Timestamp requires.
  int64_t seconds = ns / 1000000000;
  int64_t nanos = ns % 1000000000;
  if (nanos < 0) {
    nanos += 1000000000;
    seconds -= 1;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(nanos));
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

Labels LabelsFromProto(const google::protobuf::Map<std::string, std::string>& labels) {
  return Labels(labels.begin(), labels.end());
}

void LabelsToProto(const Labels& labels, google::protobuf::Map<std::string, std::string>* out) {
  out->clear();
  for (const auto& [k, v] : labels) (*out)[k] = v;
}

void InfoToProto(const SnapshotInfo& info, v1::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  out->set_kind(static_cast<v1::Kind>(info.kind));
  TimeToProto(info.created, out->mutable_created_at());
  TimeToProto(info.updated, out->mutable_updated_at());
  LabelsToProto(info.labels, out->mutable_labels());
}

SnapshotInfo InfoFromProto(const v1::Info& info) {
  SnapshotInfo out;
  out.name = info.name();
  out.parent = info.parent();
  int kind = info.kind();
  out.kind = kind >= 0 && kind <= 3 ? static_cast<SnapshotKind>(kind) : SnapshotKind::kUnknown;
  out.created = TimeFromProto(info.created_at());
  out.updated = TimeFromProto(info.updated_at());
  out.labels = LabelsFromProto(info.labels());
  return out;
}

void MountsToProto(const std::vector<MountSpec>& mounts,
                   google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const MountSpec& m : mounts) {
    auto* pm = out->Add();
    pm->set_type(m.type);
    pm->set_source(m.source);
    pm->set_target(m.target);
    for (const auto& o : m.options) pm->add_options(o);
  }
}

std::vector<MountSpec> MountsFromProto(
    const google::protobuf::RepeatedPtrField<containerd::types::Mount>& mounts) {
  std::vector<MountSpec> out;
  for (const auto& pm : mounts) {
    out.push_back(MountSpec{pm.type(), pm.source(), pm.target(),
                            std::vector<std::string>(pm.options().begin(), pm.options().end())});
  }
  return out;
}

}  // namespace slipstream::plugin
