// SPDX-License-Identifier: Apache-2.0
#include "plugin/snapshot_filter.h"

#include "gtest/gtest.h"

namespace slipstream::plugin {
namespace {

SnapshotInfo Snap() {
  SnapshotInfo info;
  info.name = "default/5/sha256:abc";
  info.parent = "sha256:parent";
  info.kind = SnapshotKind::kCommitted;
  info.labels = {{"containerd.io/snapshot.ref", "sha256:chain"}, {"a.b", "x y"}, {"plain", "v"}};
  return info;
}

bool Matches(const std::vector<std::string>& filters) {
  auto f = SnapshotFilter::Parse(filters);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() && f->Match(Snap());
}

TEST(SnapshotFilterTest, Table) {
  struct Case {
    std::vector<std::string> filters;
    bool match;
  };
  for (const Case& c : std::vector<Case>{
           {{}, true},
           {{""}, true},
           {{"name==default/5/sha256:abc"}, true},
           {{"name==\"default/5/sha256:abc\""}, true},
           {{"name==other"}, false},
           {{"parent==sha256:parent"}, true},
           {{"kind==committed"}, true},
           {{"kind==active"}, false},
           {{"labels.\"containerd.io/snapshot.ref\"==sha256:chain,parent==sha256:parent"}, true},
           {{"labels.\"containerd.io/snapshot.ref\"==sha256:chain,parent==other"}, false},
           {{"labels.\"containerd.io/snapshot.ref\"==x", "kind==committed"}, true},
           {{"labels.a.b==\"x y\""}, true},
           {{"labels.plain"}, true},
           {{"labels.missing"}, false},
           {{"labels.missing!=v"}, true},
           {{"labels.plain!=v"}, false},
           {{"name~=/sha256:[a-c]+$/"}, true},
           {{"name~=\"^x\""}, false},
           {{" name == default/5/sha256:abc , kind==committed "}, true},
           {{"unknownfield==x"}, false},
       }) {
    std::string desc;
    for (const auto& f : c.filters) desc += "[" + f + "]";
    EXPECT_EQ(Matches(c.filters), c.match) << desc;
  }
}

TEST(SnapshotFilterTest, SyntaxErrorsAreInvalidArgument) {
  for (const char* bad : {"name==", "==x", "name=x", "labels.\"unterminated==x", "name==x,",
                          "name~=\"[\""}) {
    auto f = SnapshotFilter::Parse({bad});
    EXPECT_TRUE(absl::IsInvalidArgument(f.status())) << bad << " -> " << f.status();
  }
}

}  // namespace
}  // namespace slipstream::plugin
