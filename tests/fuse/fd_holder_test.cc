// SPDX-License-Identifier: Apache-2.0
// The fd holder (cmd/fuse_holder) and its protocol and client (fuse/fd_holder_*), with fake
// descriptors: pipes stand for /dev/fuse connections (a pipe whose writer closed polls
// POLLHUP as an aborted connection polls POLLERR), eventfds for connections that stay. The
// holder runs in a thread of the test (durable_mount_test starts the real binary).
#include "cmd/fuse_holder/fd_holder.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "fuse/fd_holder_client.h"
#include "fuse/fd_holder_protocol.h"
#include "fuse/mountinfo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream::fuse {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Pipe {
  UniqueFd read, write;
};

Pipe MakePipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Two descriptors refer to the same open pipe when bytes written through one side show up
// through the other.
void ExpectSamePipe(int write_end, int read_end, const std::string& bytes) {
  ASSERT_EQ(::write(write_end, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  std::string got(bytes.size(), '\0');
  ASSERT_EQ(::read(read_end, got.data(), got.size()), static_cast<ssize_t>(bytes.size()));
  EXPECT_EQ(got, bytes);
}

// ---- protocol --------------------------------------------------------------------------

TEST(HolderProtocolTest, RequestsRoundTrip) {
  for (HolderOp op : {HolderOp::kPut, HolderOp::kGet, HolderOp::kDrop}) {
    HolderRequest r{op, "/var/lib/slipstream/fuse dir"};
    auto parsed = ParseHolderRequest(FormatHolderRequest(r));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->op, op);
    EXPECT_EQ(parsed->key, r.key);
  }
  EXPECT_EQ(ParseHolderRequest("LIST")->op, HolderOp::kList);
  EXPECT_EQ(ParseHolderRequest("QUIT")->op, HolderOp::kQuit);
}

TEST(HolderProtocolTest, BadRequestsAreInvalidArgument) {
  for (const std::string& bad :
       {std::string("PUT"), std::string("GET "), std::string("DROP a\nb"), std::string("LIST x"),
        std::string("QUIT now"), std::string("TAKE /x"), std::string(""),
        absl::StrCat("GET ", std::string(kHolderMaxKey + 1, 'k')), std::string("GET a\0b", 7)}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseHolderRequest(bad).status())) << bad;
  }
  EXPECT_TRUE(ParseHolderRequest(absl::StrCat("GET ", std::string(kHolderMaxKey, 'k'))).ok());
}

class SocketPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // tests write to pipes whose reader is gone: EPIPE
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a_ = UniqueFd(sv[0]);
    b_ = UniqueFd(sv[1]);
  }
  UniqueFd a_, b_;
};

TEST_F(SocketPairTest, MessageCarriesTextAndOneDescriptor) {
  Pipe p = MakePipe();
  ASSERT_TRUE(SendHolderMessage(a_.get(), "PUT /m", p.read.get()).ok());
  ASSERT_TRUE(SendHolderMessage(a_.get(), "LIST").ok());
  auto first = ReceiveHolderMessage(b_.get());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->text, "PUT /m");
  ASSERT_TRUE(first->fd.valid());
  EXPECT_NE(first->fd.get(), p.read.get());
  EXPECT_TRUE(::fcntl(first->fd.get(), F_GETFD) & FD_CLOEXEC);
  ExpectSamePipe(p.write.get(), first->fd.get(), "through the socket");
  auto second = ReceiveHolderMessage(b_.get());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->text, "LIST");
  EXPECT_FALSE(second->fd.valid());
  a_.Reset();
  EXPECT_TRUE(absl::IsUnavailable(ReceiveHolderMessage(b_.get()).status()));
}

TEST_F(SocketPairTest, TwoDescriptorsAreRefusedAndClosed) {
  Pipe p = MakePipe();
  int fds[2] = {p.read.get(), p.read.get()};
  char text[] = "PUT /x";
  iovec iov{text, 6};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(fds))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(fds));
  std::memcpy(CMSG_DATA(c), fds, sizeof(fds));
  ASSERT_EQ(::sendmsg(a_.get(), &msg, 0), 6);
  p.read.Reset();
  EXPECT_TRUE(absl::IsInvalidArgument(ReceiveHolderMessage(b_.get()).status()));
  // Both received copies were closed: the pipe has no reader left.
  EXPECT_EQ(::write(p.write.get(), "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST_F(SocketPairTest, ReceiveTimesOut) {
  timeval tv{0, 20000};
  ASSERT_EQ(::setsockopt(b_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  EXPECT_TRUE(absl::IsDeadlineExceeded(ReceiveHolderMessage(b_.get()).status()));
}

// ---- the holder ------------------------------------------------------------------------

// A holder serving on a temp socket from a thread; stopped through an eventfd.
class FdHolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    auto tmp = TempDir::Create("fd-holder-");
    ASSERT_TRUE(tmp.ok());
    tmp_.emplace(*std::move(tmp));
    socket_ = tmp_->Join("holder.sock");
    stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
    ASSERT_TRUE(stop_.valid());
    ASSERT_NO_FATAL_FAILURE(StartHolder());
  }
  void TearDown() override { StopHolder(); }

  void StartHolder() {
    auto holder = holder::FdHolder::Listen(socket_, {.stop_fd = stop_.get()});
    ASSERT_TRUE(holder.ok()) << holder.status();
    holder_ = *std::move(holder);
    run_status_ = absl::UnknownError("running");
    thread_ = std::thread([this] { run_status_ = holder_->Run(); });
  }
  // Stops the thread (through the eventfd unless the holder already quit).
  void StopHolder() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    ASSERT_EQ(::write(stop_.get(), &one, sizeof(one)), 8);
    thread_.join();
    uint64_t drained;
    ASSERT_EQ(::read(stop_.get(), &drained, sizeof(drained)), 8);
    holder_.reset();
  }

  FdHolderClient Client() {
    auto c = FdHolderClient::Connect(socket_);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  std::optional<TempDir> tmp_;
  std::string socket_;
  UniqueFd stop_;
  std::unique_ptr<holder::FdHolder> holder_;
  std::thread thread_;
  absl::Status run_status_;
};

TEST_F(FdHolderTest, KeepsADescriptorAfterTheClientClosedItsOwn) {
  Pipe p = MakePipe();
  {
    FdHolderClient daemon = Client();
    ASSERT_TRUE(daemon.Put("/mnt/a", p.read.get()).ok());
  }
  p.read.Reset();  // the "daemon" is gone: only the holder has the read end now
  FdHolderClient next = Client();
  auto got = next.Get("/mnt/a");
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSamePipe(p.write.get(), got->get(), "the same open pipe");
  // GET hands out a duplicate: the holder still has its own.
  got->Reset();
  auto again = next.Get("/mnt/a");
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectSamePipe(p.write.get(), again->get(), "still held");
}

TEST_F(FdHolderTest, PutReplacesDropForgetsListShowsKeys) {
  FdHolderClient c = Client();
  Pipe first = MakePipe(), second = MakePipe();
  UniqueFd other(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(c.Put("/m1", first.read.get()).ok());
  ASSERT_TRUE(c.Put("/m2", other.get()).ok());
  ASSERT_TRUE(c.Put("/m1", second.read.get()).ok());
  EXPECT_THAT(*c.List(), ElementsAre("/m1", "/m2"));
  // The replaced descriptor was closed by the holder.
  first.read.Reset();
  EXPECT_EQ(::write(first.write.get(), "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  auto m1 = c.Get("/m1");
  ASSERT_TRUE(m1.ok());
  ExpectSamePipe(second.write.get(), m1->get(), "replacement");

  ASSERT_TRUE(c.Drop("/m1").ok());
  EXPECT_TRUE(absl::IsNotFound(c.Drop("/m1")));
  EXPECT_TRUE(absl::IsNotFound(c.Get("/m1").status()));
  EXPECT_THAT(*c.List(), ElementsAre("/m2"));
  m1->Reset();
  second.read.Reset();
  EXPECT_EQ(::write(second.write.get(), "x", 1), -1);  // dropped means closed
  EXPECT_EQ(errno, EPIPE);
}

TEST_F(FdHolderTest, ForgetsADescriptorWhoseOtherSideIsGone) {
  FdHolderClient c = Client();
  Pipe gone = MakePipe();
  UniqueFd stays(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(c.Put("/dead", gone.read.get()).ok());
  ASSERT_TRUE(c.Put("/alive", stays.get()).ok());
  gone.read.Reset();
  // As when a mount is gone and its FUSE connection aborted: the peer closes. The holder
  // sees POLLHUP in the same poll that delivers the next request, and handles it first.
  gone.write.Reset();
  EXPECT_THAT(*c.List(), ElementsAre("/alive"));
  EXPECT_TRUE(absl::IsNotFound(c.Get("/dead").status()));
}

TEST_F(FdHolderTest, RefusesMalformedRequestsAndKeepsServing) {
  FdHolderClient c = Client();
  // PUT without a descriptor, GET with one: refused with a reason.
  UniqueFd raw_client;
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());
    ASSERT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    raw_client = std::move(s);
  }
  Pipe p = MakePipe();
  for (auto [text, fd] : std::vector<std::pair<std::string, int>>{
           {"PUT /x", -1}, {"GET /x", p.read.get()}, {"FROB", -1}, {"LIST extra", -1}}) {
    ASSERT_TRUE(SendHolderMessage(raw_client.get(), text, fd).ok());
    auto answer = ReceiveHolderMessage(raw_client.get());
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->text.substr(0, 4), "ERR ") << text << " -> " << answer->text;
    EXPECT_FALSE(answer->fd.valid());
  }
  EXPECT_THAT(*c.List(), IsEmpty());
  // The client's errors carry the holder's reason.
  absl::Status put = c.Put("", p.read.get());
  EXPECT_TRUE(absl::IsFailedPrecondition(put)) << put;
}

TEST_F(FdHolderTest, SocketIsPrivateAndASecondHolderIsRefused) {
  struct stat st;
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = holder::FdHolder::Listen(socket_);
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  // The live holder still serves.
  EXPECT_THAT(*Client().List(), IsEmpty());
}

TEST_F(FdHolderTest, QuitClosesEverythingAndAStaleSocketIsReplaced) {
  Pipe p = MakePipe();
  {
    FdHolderClient c = Client();
    ASSERT_TRUE(c.Put("/m", p.read.get()).ok());
    ASSERT_TRUE(c.Quit().ok());
  }
  thread_.join();
  EXPECT_TRUE(run_status_.ok()) << run_status_;
  holder_.reset();
  p.read.Reset();
  EXPECT_EQ(::write(p.write.get(), "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_TRUE(absl::IsUnavailable(FdHolderClient::Connect(socket_).status()));

  // A socket file nobody listens on (a holder killed by SIGKILL leaves one) is replaced.
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  EXPECT_TRUE(absl::IsUnavailable(FdHolderClient::Connect(socket_).status()));
  ASSERT_NO_FATAL_FAILURE(StartHolder());
  EXPECT_THAT(*Client().List(), IsEmpty());
}

TEST_F(FdHolderTest, ManyClientsAtOnce) {
  std::vector<FdHolderClient> clients;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(Client());
    fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(clients[i].Put(absl::StrCat("/m", i), fds[i].get()).ok());
  }
  clients.erase(clients.begin(), clients.begin() + 5);  // some disconnect
  EXPECT_EQ(clients.back().List()->size(), 10u);
}

TEST(FdHolderClientTest, NobodyListeningIsUnavailable) {
  auto tmp = TempDir::Create("fd-holder-none-");
  ASSERT_TRUE(tmp.ok());
  EXPECT_TRUE(absl::IsUnavailable(FdHolderClient::Connect(tmp->Join("none.sock")).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(FdHolderClient::Connect("").status()));
}

// ---- mountinfo -------------------------------------------------------------------------

TEST(MountinfoTest, TopmostMountAtAPathWithEscapes) {
  const std::string text =
      "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
      "40 22 0:40 / /var/lib/s\\040s/fuse rw,nosuid shared:5 - tmpfs stale rw\n"
      "41 40 0:41 / /var/lib/s\\040s/fuse ro,nosuid,nodev - fuse.slipstream slipstream rw\n"
      "42 1 0:42 / /var/lib/s\\040s/fuse/inner rw - overlay overlay rw\n";
  EXPECT_EQ(MountTypeAt(text, "/var/lib/s s/fuse"), "fuse.slipstream");
  EXPECT_EQ(MountTypeAt(text, "/proc"), "proc");
  EXPECT_EQ(MountTypeAt(text, "/var/lib/s\\040s/fuse"), std::nullopt);
  EXPECT_EQ(MountTypeAt(text, "/var/lib"), std::nullopt);
  EXPECT_EQ(MountTypeAt("garbage line\n\n", "/x"), std::nullopt);
  auto root = CurrentMountTypeAt("/");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_TRUE(root->has_value());
}

TEST(MountinfoTest, CanonicalMountpointResolvesTheParentOnly) {
  auto tmp = TempDir::Create("mountinfo-");
  ASSERT_TRUE(tmp.ok());
  ASSERT_TRUE(MakeDirs(tmp->Join("real")).ok());
  ASSERT_EQ(::symlink(tmp->Join("real").c_str(), tmp->Join("link").c_str()), 0);
  char resolved[PATH_MAX];
  ASSERT_NE(::realpath(tmp->Join("real").c_str(), resolved), nullptr);
  auto c = CanonicalMountpoint(tmp->Join("link/fuse/"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, std::string(resolved) + "/fuse");  // "fuse" need not exist
  EXPECT_TRUE(absl::IsInvalidArgument(CanonicalMountpoint("relative").status()));
  EXPECT_TRUE(absl::IsNotFound(CanonicalMountpoint(tmp->Join("no/such/x")).status()));
}

}  // namespace
}  // namespace slipstream::fuse
