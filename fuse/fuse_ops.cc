// SPDX-License-Identifier: Apache-2.0
// The libfuse low-level callbacks of FuseServer: each translates one request into a LayerFs
// call and answers it through exactly one FuseReply.
#include "fuse/fuse_ops.h"

#include <cerrno>
#include <cstring>
#include <exception>

#include "common/log.h"
#include "common/status.h"
#include "fuse/fuse_reply.h"
#include "fuse/fuse_server.h"
#include "fuse/fuse_translate.h"

namespace slipstream::fuse {
namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

fuse_entry_param EntryParam(const Attr& attr, const FuseServerOptions& o) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = attr.ino;
  e.attr = ToStat(attr);
  e.attr_timeout = Seconds(o.attr_timeout);
  e.entry_timeout = Seconds(o.entry_timeout);
  return e;
}

FuseServer& ServerOf(fuse_req_t req) { return *static_cast<FuseServer*>(fuse_req_userdata(req)); }

// Runs one handler body with its FuseReply. Nothing may unwind into libfuse: an exception
// is logged, and the FuseReply's destructor then answers EIO.
template <typename Body>
void Dispatch(fuse_req_t req, const char* op, Body&& body) {
  FuseServer& server = ServerOf(req);
  server.CountRequest();
  FuseReply reply(req, op);
  try {
    body(server, reply);
  } catch (const std::exception& e) {
    log::Error("FUSE handler failed", {{"op", op}, {"error", e.what()}});
  } catch (...) {
    log::Error("FUSE handler failed", {{"op", op}});
  }
}

void ForgetOne(FuseServer& server, fuse_ino_t ino, uint64_t nlookup) {
  absl::Status s = server.fs().Forget(ino, nlookup);
  // After a restart the kernel forgets inodes this process never counted: not an error.
  if (!s.ok()) log::Debug("forget", {{"ino", ino}, {"error", s.ToString()}});
}

}  // namespace

// The libfuse callbacks. Each answers through exactly one FuseReply.
struct FuseServer::Handlers {
  static void Init(void* userdata, fuse_conn_info* conn) {
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    // Requests are small (no writes): plain read(2) of the device is all we need.
    conn->want &= ~FUSE_CAP_SPLICE_READ;
    conn->time_gran = 1;
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Dispatch(req, "lookup", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<Attr> attr = s.fs().Lookup(parent, name);
      if (attr.ok()) return r.Entry(EntryParam(*attr, s.options()));
      if (absl::IsNotFound(attr.status()) && parent != kRootIno) {
        // Layers never change, so a miss may be cached like an entry: overlayfs looks up
        // every name in every lower layer.
        fuse_entry_param negative;
        std::memset(&negative, 0, sizeof(negative));
        negative.entry_timeout = Seconds(s.options().entry_timeout);
        return r.Entry(negative);
      }
      r.Status(attr.status());
    });
  }

  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Dispatch(req, "forget", [&](FuseServer& s, FuseReply& r) {
      ForgetOne(s, ino, nlookup);
      r.None();
    });
  }

  static void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    Dispatch(req, "forget_multi", [&](FuseServer& s, FuseReply& r) {
      for (size_t i = 0; i < count; ++i) ForgetOne(s, forgets[i].ino, forgets[i].nlookup);
      r.None();
    });
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    Dispatch(req, "getattr", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<Attr> attr = s.fs().GetAttr(ino);
      if (!attr.ok()) return r.Status(attr.status());
      r.Attr(ToStat(*attr), Seconds(s.options().attr_timeout));
    });
  }

  static void ReadLink(fuse_req_t req, fuse_ino_t ino) {
    Dispatch(req, "readlink", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<std::string> target = s.fs().ReadLink(ino);
      if (!target.ok()) return r.Status(target.status());
      r.Readlink(*target);
    });
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Dispatch(req, "open", [&](FuseServer& s, FuseReply& r) {
      if (int err = WriteAccessErrno(fi->flags); err != 0) return r.Error(err);
      absl::StatusOr<uint64_t> handle = s.fs().Open(ino, fi->flags);
      if (!handle.ok()) return r.Status(handle.status());
      fi->fh = *handle;
      fi->keep_cache = 1;  // the content never changes: keep the page cache across opens
      fi->noflush = 1;
      r.Open(*fi);
    });
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    Dispatch(req, "read", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<std::string> data =
          s.fs().Read(ino, fi->fh, static_cast<int64_t>(off), static_cast<int64_t>(size));
      if (!data.ok()) {
        // The one place a failed lazy read is reported; the reader gets EIO (or EINVAL).
        log::Warn("lazy read failed", {{"ino", ino},
                                       {"offset", static_cast<int64_t>(off)},
                                       {"size", size},
                                       {"error", data.status().ToString()}});
        return r.Status(data.status());
      }
      r.Buf(*data);
    });
  }

  static void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Dispatch(req, "release", [&](FuseServer& s, FuseReply& r) {
      absl::Status st = s.fs().Release(ino, fi->fh);
      if (!st.ok()) log::Debug("release", {{"ino", ino}, {"error", st.ToString()}});
      r.Error(0);
    });
  }

  static void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Dispatch(req, "opendir", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<Attr> attr = s.fs().GetAttr(ino);
      if (!attr.ok()) return r.Status(attr.status());
      if (!S_ISDIR(attr->mode)) return r.Error(ENOTDIR);
      fi->fh = 0;
      if (ino != kRootIno) {
        // A layer's directories never change; the root's list does (layers come and go).
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
      }
      r.Open(*fi);
    });
  }

  static void ReadDirCommon(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    Dispatch(req, plus ? "readdirplus" : "readdir", [&](FuseServer& s, FuseReply& r) {
      std::string buf(size, '\0');
      size_t used = 0;
      absl::Status st = s.fs().ReadDir(ino, off, plus, [&](const DirEntry& e) {
        const size_t left = size - used;
        size_t need;
        if (plus) {
          fuse_entry_param p = EntryParam(e.attr, s.options());
          need = fuse_add_direntry_plus(req, buf.data() + used, left, e.name.c_str(), &p,
                                        e.offset);
        } else {
          struct stat stbuf = ToStat(e.attr);
          need = fuse_add_direntry(req, buf.data() + used, left, e.name.c_str(), &stbuf,
                                   e.offset);
        }
        if (need > left) return false;
        used += need;
        return true;
      });
      if (!st.ok()) return r.Status(st);
      r.Buf(std::string_view(buf.data(), used));
    });
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    ReadDirCommon(req, ino, size, off, false);
  }

  static void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info*) {
    ReadDirCommon(req, ino, size, off, true);
  }

  static void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    Dispatch(req, "releasedir", [&](FuseServer&, FuseReply& r) { r.Error(0); });
  }

  static void StatFs(fuse_req_t req, fuse_ino_t) {
    Dispatch(req, "statfs",
             [&](FuseServer& s, FuseReply& r) { r.Statfs(ToStatvfs(s.fs().StatFs())); });
  }

  static void AnswerBytes(FuseReply& r, size_t size, const std::string& value) {
    switch (ChooseXattrAnswer(size, value.size())) {
      case XattrAnswer::kSize:
        return r.XattrSize(value.size());
      case XattrAnswer::kTooSmall:
        return r.Error(ERANGE);
      case XattrAnswer::kData:
        return r.Buf(value);
    }
  }

  static void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    Dispatch(req, "getxattr", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<std::optional<std::string>> value = s.fs().GetXattr(ino, name);
      if (!value.ok()) return r.Status(value.status());
      if (!value->has_value()) return r.Error(ENODATA);
      AnswerBytes(r, size, **value);
    });
  }

  static void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    Dispatch(req, "listxattr", [&](FuseServer& s, FuseReply& r) {
      absl::StatusOr<std::vector<std::string>> names = s.fs().ListXattr(ino);
      if (!names.ok()) return r.Status(names.status());
      AnswerBytes(r, size, JoinXattrNames(*names));
    });
  }

  static void Ok(fuse_req_t req, const char* op) {
    Dispatch(req, op, [&](FuseServer&, FuseReply& r) { r.Error(0); });
  }
  // Everything that would write: the kernel already refuses most of it on a read-only mount.
  static void ReadOnly(fuse_req_t req, const char* op) {
    Dispatch(req, op, [&](FuseServer&, FuseReply& r) { r.Error(EROFS); });
  }
};

const fuse_lowlevel_ops& FuseOperations() {
  using H = FuseServer::Handlers;
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o;
    std::memset(&o, 0, sizeof(o));
    o.init = H::Init;
    o.lookup = H::Lookup;
    o.forget = H::Forget;
    o.forget_multi = H::ForgetMulti;
    o.getattr = H::GetAttr;
    o.readlink = H::ReadLink;
    o.open = H::Open;
    o.read = H::Read;
    o.release = H::Release;
    o.opendir = H::OpenDir;
    o.readdir = H::ReadDir;
    o.readdirplus = H::ReadDirPlus;
    o.releasedir = H::ReleaseDir;
    o.statfs = H::StatFs;
    o.getxattr = H::GetXattr;
    o.listxattr = H::ListXattr;
    o.flush = [](fuse_req_t req, fuse_ino_t, fuse_file_info*) { H::Ok(req, "flush"); };
    o.fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { H::Ok(req, "fsync"); };
    o.fsyncdir = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
      H::Ok(req, "fsyncdir");
    };
    o.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
      H::ReadOnly(req, "setattr");
    };
    o.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
      H::ReadOnly(req, "mknod");
    };
    o.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { H::ReadOnly(req, "mkdir"); };
    o.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { H::ReadOnly(req, "unlink"); };
    o.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { H::ReadOnly(req, "rmdir"); };
    o.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) {
      H::ReadOnly(req, "symlink");
    };
    o.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*,
                  unsigned int) { H::ReadOnly(req, "rename"); };
    o.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { H::ReadOnly(req, "link"); };
    o.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
      H::ReadOnly(req, "write");
    };
    o.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
      H::ReadOnly(req, "create");
    };
    o.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
      H::ReadOnly(req, "setxattr");
    };
    o.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) {
      H::ReadOnly(req, "removexattr");
    };
    o.fallocate = [](fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
      H::ReadOnly(req, "fallocate");
    };
    return o;
  }();
  return ops;
}

}  // namespace slipstream::fuse
