// SPDX-License-Identifier: Apache-2.0
#include "plugin/metadata_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace slipstream::plugin {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  parent TEXT NOT NULL,
  kind INTEGER NOT NULL,
  labels TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  updated_ns INTEGER NOT NULL,
  usage_size INTEGER NOT NULL DEFAULT 0,
  usage_inodes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
)sql";

constexpr char kColumns[] =
    "id, key, parent, kind, labels, created_ns, updated_ns, usage_size, usage_inodes";

std::string EncodeLabels(const Labels& labels) { return nlohmann::json(labels).dump(); }

absl::StatusOr<Labels> DecodeLabels(const std::string& text) {
  // The column is ours, but a damaged file must surface as an error, never a throw.
  try {
    return nlohmann::json::parse(text).get<Labels>();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("snapshot labels column: ", e.what()));
  }
}

absl::StatusOr<SnapshotRecord> ReadRow(const SqliteStmt& stmt) {
  SnapshotRecord r;
  r.id = stmt.ColumnInt(0);
  r.info.name = stmt.ColumnText(1);
  r.info.parent = stmt.ColumnText(2);
  r.info.kind = static_cast<SnapshotKind>(stmt.ColumnInt(3));
  SS_ASSIGN_OR_RETURN(r.info.labels, DecodeLabels(stmt.ColumnText(4)));
  r.info.created = absl::FromUnixNanos(stmt.ColumnInt(5));
  r.info.updated = absl::FromUnixNanos(stmt.ColumnInt(6));
  r.usage.size = stmt.ColumnInt(7);
  r.usage.inodes = stmt.ColumnInt(8);
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetadataStore>> MetadataStore::Open(const std::string& path) {
  SS_ASSIGN_OR_RETURN(auto db, SqliteDb::Open(path));
  // WAL + synchronous=FULL: a committed transaction survives a power cut, and readers do not
  // block the writer. The snapshot directories are renamed into place before the row commits,
  // so durability of the row is what makes a snapshot exist.
  SS_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  SS_RETURN_IF_ERROR(db->Exec(kSchema));
  return std::unique_ptr<MetadataStore>(new MetadataStore(std::move(db)));
}

absl::StatusOr<std::unique_ptr<SqliteTransaction>> MetadataStore::Begin() {
  return SqliteTransaction::Begin(*db_);
}

absl::StatusOr<SnapshotRecord> MetadataStore::Get(const std::string& key) {
  SS_ASSIGN_OR_RETURN(auto stmt,
                      SqliteStmt::Prepare(*db_, absl::StrCat("SELECT ", kColumns,
                                                             " FROM snapshots WHERE key = ?1")));
  SS_RETURN_IF_ERROR(stmt.BindText(1, key));
  SS_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
  return ReadRow(stmt);
}

absl::StatusOr<int64_t> MetadataStore::Insert(const SnapshotInfo& info, SnapshotUsage usage) {
  SS_ASSIGN_OR_RETURN(
      auto stmt,
      SqliteStmt::Prepare(*db_,
                          "INSERT INTO snapshots (key, parent, kind, labels, created_ns, "
                          "updated_ns, usage_size, usage_inodes) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  SS_RETURN_IF_ERROR(stmt.BindText(1, info.name));
  SS_RETURN_IF_ERROR(stmt.BindText(2, info.parent));
  SS_RETURN_IF_ERROR(stmt.BindInt(3, static_cast<int64_t>(info.kind)));
  SS_RETURN_IF_ERROR(stmt.BindText(4, EncodeLabels(info.labels)));
  SS_RETURN_IF_ERROR(stmt.BindInt(5, absl::ToUnixNanos(info.created)));
  SS_RETURN_IF_ERROR(stmt.BindInt(6, absl::ToUnixNanos(info.updated)));
  SS_RETURN_IF_ERROR(stmt.BindInt(7, usage.size));
  SS_RETURN_IF_ERROR(stmt.BindInt(8, usage.inodes));
  auto status = stmt.Run();
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", info.name, " already exists"));
  }
  SS_RETURN_IF_ERROR(status);
  return db_->LastInsertRowid();
}

absl::Status MetadataStore::Delete(const std::string& key) {
  SS_ASSIGN_OR_RETURN(auto stmt, SqliteStmt::Prepare(*db_, "DELETE FROM snapshots WHERE key = ?1"));
  SS_RETURN_IF_ERROR(stmt.BindText(1, key));
  SS_RETURN_IF_ERROR(stmt.Run());
  if (db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
  }
  return absl::OkStatus();
}

absl::Status MetadataStore::SetLabels(const std::string& key, const Labels& labels,
                                      absl::Time updated) {
  SS_ASSIGN_OR_RETURN(
      auto stmt,
      SqliteStmt::Prepare(*db_, "UPDATE snapshots SET labels = ?2, updated_ns = ?3 WHERE key = ?1"));
  SS_RETURN_IF_ERROR(stmt.BindText(1, key));
  SS_RETURN_IF_ERROR(stmt.BindText(2, EncodeLabels(labels)));
  SS_RETURN_IF_ERROR(stmt.BindInt(3, absl::ToUnixNanos(updated)));
  SS_RETURN_IF_ERROR(stmt.Run());
  if (db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
  }
  return absl::OkStatus();
}

absl::Status MetadataStore::CommitActive(const std::string& key, const std::string& name,
                                         const Labels& labels, SnapshotUsage usage,
                                         absl::Time now) {
  SS_ASSIGN_OR_RETURN(
      auto stmt,
      SqliteStmt::Prepare(*db_,
                          "UPDATE snapshots SET key = ?2, kind = ?3, labels = ?4, created_ns = ?5, "
                          "updated_ns = ?5, usage_size = ?6, usage_inodes = ?7 WHERE key = ?1"));
  SS_RETURN_IF_ERROR(stmt.BindText(1, key));
  SS_RETURN_IF_ERROR(stmt.BindText(2, name));
  SS_RETURN_IF_ERROR(stmt.BindInt(3, static_cast<int64_t>(SnapshotKind::kCommitted)));
  SS_RETURN_IF_ERROR(stmt.BindText(4, EncodeLabels(labels)));
  SS_RETURN_IF_ERROR(stmt.BindInt(5, absl::ToUnixNanos(now)));
  SS_RETURN_IF_ERROR(stmt.BindInt(6, usage.size));
  SS_RETURN_IF_ERROR(stmt.BindInt(7, usage.inodes));
  auto status = stmt.Run();
  if (absl::IsAlreadyExists(status)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  SS_RETURN_IF_ERROR(status);
  if (db_->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> MetadataStore::HasChildren(const std::string& key) {
  SS_ASSIGN_OR_RETURN(auto stmt,
                      SqliteStmt::Prepare(*db_, "SELECT 1 FROM snapshots WHERE parent = ?1 LIMIT 1"));
  SS_RETURN_IF_ERROR(stmt.BindText(1, key));
  return stmt.Step();
}

absl::StatusOr<std::vector<int64_t>> MetadataStore::AncestorIds(const std::string& key) {
  std::vector<int64_t> ids;
  SS_ASSIGN_OR_RETURN(SnapshotRecord current, Get(key));
  // Bounded by the table size: a cycle can only come from a damaged file.
  while (!current.info.parent.empty()) {
    auto parent = Get(current.info.parent);
    if (!parent.ok()) {
      return Annotate(parent.status(), absl::StrCat("parent chain of ", key));
    }
    current = std::move(*parent);
    ids.push_back(current.id);
    if (ids.size() > 100000) return absl::DataLossError("snapshot parent chain loops");
  }
  return ids;
}

absl::StatusOr<std::vector<SnapshotRecord>> MetadataStore::List() {
  SS_ASSIGN_OR_RETURN(auto stmt, SqliteStmt::Prepare(*db_, absl::StrCat("SELECT ", kColumns,
                                                                        " FROM snapshots ORDER BY id")));
  std::vector<SnapshotRecord> out;
  while (true) {
    SS_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    SS_ASSIGN_OR_RETURN(auto record, ReadRow(stmt));
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<std::set<int64_t>> MetadataStore::Ids() {
  SS_ASSIGN_OR_RETURN(auto stmt, SqliteStmt::Prepare(*db_, "SELECT id FROM snapshots"));
  std::set<int64_t> ids;
  while (true) {
    SS_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.insert(stmt.ColumnInt(0));
  }
  return ids;
}

}  // namespace slipstream::plugin
