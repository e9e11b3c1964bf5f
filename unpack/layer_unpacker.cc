// SPDX-License-Identifier: Apache-2.0
#include "unpack/layer_unpacker.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"
#include "unpack/byte_pipe.h"
#include "unpack/layer_writer.h"
#include "unpack/tar_reader.h"

namespace slipstream::unpack {
namespace {

constexpr int64_t kReadChunk = 4 << 20;

absl::Status CheckSha256(const Digest& d, std::string_view what) {
  if (d.empty() || d.algorithm() == "sha256") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(AV(what), " ", d.str(), " is not sha256, which is all that is supported"));
}

absl::Status CheckDigest(const Digest& expected, const Digest& actual, std::string_view what) {
  if (expected.empty() || expected == actual) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(AV(what), " mismatch: expected ", expected.str(),
                                          ", got ", actual.str()));
}

}  // namespace

// The stages, in the order bytes flow through them. Destroyed before the partial directory
// is removed, so that no descriptor into it stays open.
struct LayerUnpacker::Pipeline {
  Sha256Hasher compressed_hash;
  std::unique_ptr<BytePipe> hash_pipe;  // null: compressed_hash runs on the writing thread
  Sha256Hasher diff_hash;
  int64_t compressed_bytes = 0;
  int64_t uncompressed_bytes = 0;
  std::unique_ptr<LayerWriter> writer;
  std::unique_ptr<TarReader> tar;
  std::unique_ptr<BytePipe> pipe;  // null: the tar reader runs on the decompressing thread
  std::unique_ptr<Decompressor> decompressor;
};

absl::StatusOr<std::unique_ptr<LayerUnpacker>> LayerUnpacker::Create(
    std::string_view media_type, const Digest& expected_digest, const Digest& expected_diff_id,
    const std::string& dest, const LayerUnpackOptions& options) {
  SS_ASSIGN_OR_RETURN(Compression compression, remote::LayerCompression(media_type));
  SS_RETURN_IF_ERROR(CheckSha256(expected_digest, "layer digest"));
  SS_RETURN_IF_ERROR(CheckSha256(expected_diff_id, "diff_id"));
  if (!options.hash_input && !expected_digest.empty()) {
    return absl::InvalidArgumentError("a layer digest to check needs hash_input");
  }
  struct stat st;
  if (::lstat(dest.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("layer directory ", dest, " already exists"));
  }
  std::string tmpl = absl::StrCat(dest, ".partial-XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return LastErrnoStatus(absl::StrCat("mkdtemp ", tmpl));
  }
  std::unique_ptr<LayerUnpacker> u(new LayerUnpacker(dest, tmpl, expected_digest,
                                                     expected_diff_id, compression));
  auto p = std::make_unique<Pipeline>();
  absl::StatusOr<std::unique_ptr<LayerWriter>> writer = LayerWriter::Create(tmpl);
  if (!writer.ok()) return u->Fail(writer.status());  // ~LayerUnpacker cleans up
  p->writer = std::move(*writer);
  p->tar = std::make_unique<TarReader>(p->writer.get());
  Pipeline* raw = p.get();
  std::atomic<int64_t>* live_bytes = options.live_uncompressed_bytes;
  std::atomic<int64_t>* live_entries = options.live_entries;
  // The diffID is hashed where the tar is parsed: with the untar on a thread of its own that
  // balances the two halves (hash + inflate against hash + parse + write) on two cores.
  auto untar = [raw, live_entries](std::string_view tar_bytes) {
    raw->diff_hash.Update(tar_bytes);
    absl::Status s = raw->tar->Write(tar_bytes);
    if (live_entries != nullptr) live_entries->store(raw->tar->entries(), std::memory_order_relaxed);
    return s;
  };
  if (options.untar_thread) p->pipe = std::make_unique<BytePipe>(untar);
  if (options.hash_input && options.hash_thread) {
    p->hash_pipe = std::make_unique<BytePipe>([raw](std::string_view compressed) {
      raw->compressed_hash.Update(compressed);
      return absl::OkStatus();
    });
  }
  p->decompressor = NewLayerDecompressor(
      compression,
      [raw, live_bytes, untar](std::string_view tar_bytes) {
        raw->uncompressed_bytes += static_cast<int64_t>(tar_bytes.size());
        if (live_bytes != nullptr) {
          live_bytes->store(raw->uncompressed_bytes, std::memory_order_relaxed);
        }
        return raw->pipe ? raw->pipe->Write(tar_bytes) : untar(tar_bytes);
      },
      options.gzip_backend);
  u->pipeline_ = std::move(p);
  u->hash_input_ = options.hash_input;
  return u;
}

LayerUnpacker::LayerUnpacker(std::string dest, std::string partial, Digest expected_digest,
                             Digest expected_diff_id, Compression compression)
    : dest_(std::move(dest)),
      partial_(std::move(partial)),
      expected_digest_(std::move(expected_digest)),
      expected_diff_id_(std::move(expected_diff_id)),
      compression_(compression) {}

LayerUnpacker::~LayerUnpacker() {
  if (!done_) (void)Fail(absl::CancelledError("layer unpack abandoned"));
}

absl::Status LayerUnpacker::Fail(absl::Status s) {
  if (done_) return status_.ok() ? s : status_;
  done_ = true;
  status_ = Annotate(s, absl::StrCat("unpack layer ",
                                     expected_digest_.empty() ? dest_ : expected_digest_.Short()));
  pipeline_.reset();
  absl::Status removed = RemoveAll(partial_);
  if (!removed.ok()) {
    // Nothing better to do than say so: the caller's error is the one that matters.
    status_ = Annotate(status_, absl::StrCat("(also failed to remove ", partial_, ": ",
                                             removed.ToString(), ")"));
  }
  return status_;
}

absl::Status LayerUnpacker::Write(std::string_view compressed) {
  if (done_) {
    return status_.ok() ? absl::FailedPreconditionError("layer unpacker already finished")
                        : status_;
  }
  if (pipeline_->hash_pipe) {
    absl::Status s = pipeline_->hash_pipe->Write(compressed);
    if (!s.ok()) return Fail(s);
  } else if (hash_input_) {
    pipeline_->compressed_hash.Update(compressed);
  }
  pipeline_->compressed_bytes += static_cast<int64_t>(compressed.size());
  absl::Status s = pipeline_->decompressor->Write(compressed);
  if (!s.ok()) return Fail(s);
  return absl::OkStatus();
}

absl::StatusOr<LayerUnpackResult> LayerUnpacker::Finish() {
  if (done_) {
    return status_.ok() ? absl::FailedPreconditionError("layer unpacker already finished")
                        : status_;
  }
  absl::StatusOr<LayerUnpackResult> result = FinishImpl();
  if (!result.ok()) return Fail(result.status());
  done_ = true;
  return result;
}

absl::StatusOr<LayerUnpackResult> LayerUnpacker::FinishImpl() {
  Pipeline& p = *pipeline_;
  SS_RETURN_IF_ERROR(p.decompressor->Finish());
  if (p.pipe) SS_RETURN_IF_ERROR(p.pipe->Finish());
  if (p.hash_pipe) SS_RETURN_IF_ERROR(p.hash_pipe->Finish());
  SS_RETURN_IF_ERROR(p.tar->Finish());
  SS_RETURN_IF_ERROR(p.writer->Finish());
  LayerUnpackResult r;
  if (hash_input_) r.digest = p.compressed_hash.Finish();
  r.diff_id = p.diff_hash.Finish();
  r.compression = compression_;
  r.compressed_bytes = p.compressed_bytes;
  r.uncompressed_bytes = p.uncompressed_bytes;
  r.entries = p.tar->entries();
  // The compressed digest first: when the blob itself is wrong, that is the root cause.
  SS_RETURN_IF_ERROR(CheckDigest(expected_digest_, r.digest, "layer digest"));
  SS_RETURN_IF_ERROR(CheckDigest(expected_diff_id_, r.diff_id, "layer diff_id"));
  pipeline_.reset();
  // RENAME_NOREPLACE: never clobber a layer someone else completed meanwhile.
  if (::renameat2(AT_FDCWD, partial_.c_str(), AT_FDCWD, dest_.c_str(), RENAME_NOREPLACE) != 0) {
    return LastErrnoStatus(absl::StrCat("rename ", partial_, " to ", dest_));
  }
  return r;
}

absl::StatusOr<LayerUnpackResult> UnpackLayer(remote::BlobReader& blob, std::string_view media_type,
                                              const Digest& expected_diff_id,
                                              const std::string& dest,
                                              const LayerUnpackOptions& options) {
  SS_ASSIGN_OR_RETURN(std::unique_ptr<LayerUnpacker> u,
                      LayerUnpacker::Create(media_type, blob.digest(), expected_diff_id, dest,
                                            options));
  for (int64_t offset = 0; offset < blob.size();) {
    SS_ASSIGN_OR_RETURN(std::string chunk,
                        blob.ReadAt(offset, std::min(kReadChunk, blob.size() - offset)));
    if (chunk.empty()) {
      return absl::DataLossError(absl::StrCat("blob ", blob.digest().Short(), " ends at ", offset,
                                              " of ", blob.size(), " bytes"));
    }
    offset += static_cast<int64_t>(chunk.size());
    SS_RETURN_IF_ERROR(u->Write(chunk));
  }
  return u->Finish();
}

absl::StatusOr<LayerUnpackResult> UnpackLayerFromFd(int fd, std::string_view media_type,
                                                    const Digest& expected_digest,
                                                    const Digest& expected_diff_id,
                                                    const std::string& dest,
                                                    const LayerUnpackOptions& options) {
  SS_ASSIGN_OR_RETURN(std::unique_ptr<LayerUnpacker> u,
                      LayerUnpacker::Create(media_type, expected_digest, expected_diff_id, dest,
                                            options));
  std::vector<char> buf(1 << 20);
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("read layer blob");
    }
    if (n == 0) break;
    SS_RETURN_IF_ERROR(u->Write(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  return u->Finish();
}

}  // namespace slipstream::unpack
