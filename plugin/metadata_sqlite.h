// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace slipstream::plugin {

// One open SQLite database connection. Owned by MetadataStore. Not thread-safe: the owner
// serializes every call (the connection is opened in SQLite's multi-thread mode, so it may
// move between threads, but two threads must never use it at once).
class SqliteDb {
 public:
  // Opens (creating if needed) the database at `path`. Errors are Internal/Unavailable with
  // SQLite's message and the path.
  static absl::StatusOr<std::unique_ptr<SqliteDb>> Open(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements without results (DDL, PRAGMA, BEGIN/COMMIT).
  absl::Status Exec(std::string_view sql);
  // Status for the connection's last error, prefixed with `context`.
  absl::Status Error(std::string_view context) const;
  // The rowid of the last successful INSERT.
  int64_t LastInsertRowid() const;
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  sqlite3* raw() const { return db_; }

 private:
  explicit SqliteDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// A prepared statement on a SqliteDb. Bind parameters are 1-based, columns 0-based, as in the
// SQLite C API. Not thread-safe; must not outlive its SqliteDb.
class SqliteStmt {
 public:
  static absl::StatusOr<SqliteStmt> Prepare(SqliteDb& db, std::string_view sql);
  SqliteStmt(SqliteStmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;
  ~SqliteStmt();

  absl::Status BindText(int index, std::string_view value);
  absl::Status BindInt(int index, int64_t value);
  // Advances: true when a row is available, false when done. A constraint violation
  // (UNIQUE) is AlreadyExists; other failures are Internal.
  absl::StatusOr<bool> Step();
  // Steps to completion, ignoring rows.
  absl::Status Run();

  std::string ColumnText(int column) const;
  int64_t ColumnInt(int column) const;

 private:
  SqliteStmt(SqliteDb* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteDb* db_;
  sqlite3_stmt* stmt_;
};

// Runs BEGIN IMMEDIATE on construction; rolls back on destruction unless Commit() succeeded.
// Not thread-safe; scoped to one call of the owner.
class SqliteTransaction {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteTransaction>> Begin(SqliteDb& db);
  ~SqliteTransaction();
  // COMMIT. After an error the transaction is rolled back by the destructor.
  absl::Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb& db) : db_(db) {}
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace slipstream::plugin
