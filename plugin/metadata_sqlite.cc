// SPDX-License-Identifier: Apache-2.0
#include "plugin/metadata_sqlite.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/strings.h"

namespace slipstream::plugin {

absl::StatusOr<std::unique_ptr<SqliteDb>> SqliteDb::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open sqlite ", path, ": ", msg));
  }
  auto out = std::unique_ptr<SqliteDb>(new SqliteDb(db));
  // A second process (or a leftover handle) holding the lock should delay us, not fail us.
  sqlite3_busy_timeout(db, 5000);
  return out;
}

SqliteDb::~SqliteDb() { sqlite3_close(db_); }

absl::Status SqliteDb::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite exec \"", text.substr(0, 40), "\": ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteDb::Error(std::string_view context) const {
  return absl::InternalError(absl::StrCat(AV(context), ": ", sqlite3_errmsg(db_)));
}

int64_t SqliteDb::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int64_t SqliteDb::Changes() const { return sqlite3_changes(db_); }

absl::StatusOr<SqliteStmt> SqliteStmt::Prepare(SqliteDb& db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.raw(), sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return db.Error(absl::StrCat("sqlite prepare \"", AV(sql.substr(0, 40)), "\""));
  }
  return SqliteStmt(&db, stmt);
}

SqliteStmt::~SqliteStmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

absl::Status SqliteStmt::BindText(int index, std::string_view value) {
  if (sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    return db_->Error("sqlite bind");
  }
  return absl::OkStatus();
}

absl::Status SqliteStmt::BindInt(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) return db_->Error("sqlite bind");
  return absl::OkStatus();
}

absl::StatusOr<bool> SqliteStmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  if ((rc & 0xff) == SQLITE_CONSTRAINT) {
    return absl::AlreadyExistsError(absl::StrCat("sqlite: ", sqlite3_errmsg(db_->raw())));
  }
  return db_->Error("sqlite step");
}

absl::Status SqliteStmt::Run() {
  while (true) {
    auto row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

std::string SqliteStmt::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt_, column));
}

int64_t SqliteStmt::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

absl::StatusOr<std::unique_ptr<SqliteTransaction>> SqliteTransaction::Begin(SqliteDb& db) {
  // IMMEDIATE takes the write lock up front so a read-then-write transaction never fails
  // half-way with SQLITE_BUSY.
  auto status = db.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) return status;
  return std::unique_ptr<SqliteTransaction>(new SqliteTransaction(db));
}

SqliteTransaction::~SqliteTransaction() {
  if (!done_) db_.Exec("ROLLBACK").IgnoreError();
}

absl::Status SqliteTransaction::Commit() {
  CrashPoint("metadata.tx.before_commit");
  auto status = db_.Exec("COMMIT");
  CrashPoint("metadata.tx.after_commit");
  if (status.ok()) done_ = true;
  return status;
}

}  // namespace slipstream::plugin
