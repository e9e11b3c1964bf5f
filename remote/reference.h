// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::remote {

// An image reference as users write it ("ubuntu:22.04", "ghcr.io/org/app@sha256:…"),
// normalized the way the docker CLI and containerd do. A plain value type; thread-compatible.
struct Reference {
  // host[:port] as the user means it: "docker.io", "localhost:5000", "ghcr.io". Never
  // "index.docker.io" (normalized to "docker.io"). Use DefaultServer() for the API host.
  std::string registry;
  // Path inside the registry: "library/ubuntu", "org/app".
  std::string repository;
  // "latest" when neither tag nor digest was given; empty when only a digest was given.
  std::string tag;
  // "sha256:…" or empty. A reference may carry both a tag and a digest; the digest wins.
  std::string digest;

  // Parses and normalizes `text`. Rules (docker/distribution "reference" grammar): the first
  // path component is a registry only if it contains '.' or ':' or is "localhost"; otherwise
  // the registry is "docker.io" and a one-component repository gets "library/". Repository
  // components are lowercase alphanumerics joined by '.', '_', '__' or runs of '-'; tags match
  // [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digests are validated by Digest::Parse; the name
  // (registry/repository) is at most 255 characters. InvalidArgument naming `text` otherwise.
  static absl::StatusOr<Reference> Parse(std::string_view text);

  // Canonical form "docker.io/library/ubuntu:22.04@sha256:…" (tag and/or digest as present).
  std::string String() const;
  // "registry/repository".
  std::string Locator() const;
  // The digest when set, else the tag: what goes into /v2/<repo>/manifests/<this>.
  std::string TagOrDigest() const;
  // The same reference (tag kept) pinned to `digest`.
  Reference WithDigest(std::string digest) const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

// The host that serves the registry API for `registry` (Reference::registry):
// "registry-1.docker.io" for "docker.io", otherwise `registry` unchanged.
std::string DefaultServer(std::string_view registry);

}  // namespace slipstream::remote
