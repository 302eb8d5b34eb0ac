#include "rc/proxy/nft_programmer.h"

#include <spdlog/spdlog.h>

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <vector>

namespace rc::proxy {
namespace {

constexpr uint16_t kFamily = NFPROTO_IPV4;
constexpr size_t kElementsPerMessage = 256;

std::string Errno(int e) { return std::strerror(e); }

void AddExpr(nftnl_rule* r, const Expr& e) {
  nftnl_expr* x = nullptr;
  switch (e.kind) {
    case Expr::Kind::kPayload:
      x = nftnl_expr_alloc("payload");
      nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, e.dreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, e.base);
      nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, e.offset);
      nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, e.len);
      break;
    case Expr::Kind::kMeta:
      x = nftnl_expr_alloc("meta");
      nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, e.key);
      nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, e.dreg);
      break;
    case Expr::Kind::kMetaSet:
      x = nftnl_expr_alloc("meta");
      nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, e.key);
      nftnl_expr_set_u32(x, NFTNL_EXPR_META_SREG, e.sreg);
      break;
    case Expr::Kind::kCmp:
      x = nftnl_expr_alloc("cmp");
      nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, e.sreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, e.op);
      nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, e.data.data(), e.data.size());
      break;
    case Expr::Kind::kBitwise:
      x = nftnl_expr_alloc("bitwise");
      nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, e.sreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, e.dreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, e.len);
      nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, e.mask.data(), e.mask.size());
      nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, e.xor_.data(), e.xor_.size());
      break;
    case Expr::Kind::kLookup:
      x = nftnl_expr_alloc("lookup");
      nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, e.sreg);
      nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, e.name.c_str());
      if (e.map) nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_DREG, e.dreg);
      if (e.invert) nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
      break;
    case Expr::Kind::kCt:
      x = nftnl_expr_alloc("ct");
      nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, e.key);
      nftnl_expr_set_u8(x, NFTNL_EXPR_CT_DIR, static_cast<uint8_t>(e.op));
      nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, e.dreg);
      break;
    case Expr::Kind::kImmediate:
      x = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, e.dreg);
      nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, e.data.data(), e.data.size());
      break;
    case Expr::Kind::kVerdict:
      x = nftnl_expr_alloc("immediate");
      nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
      nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(e.verdict));
      if (!e.name.empty()) nftnl_expr_set_str(x, NFTNL_EXPR_IMM_CHAIN, e.name.c_str());
      break;
    case Expr::Kind::kNumgen:
      x = nftnl_expr_alloc("numgen");
      nftnl_expr_set_u32(x, NFTNL_EXPR_NG_DREG, e.dreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NG_MODULUS, e.mod);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
      break;
    case Expr::Kind::kDnat:
      x = nftnl_expr_alloc("nat");
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, e.sreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MAX, e.sreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, e.sreg2);
      nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MAX, e.sreg2);
      break;
    case Expr::Kind::kMasq:
      x = nftnl_expr_alloc("masq");
      break;
    case Expr::Kind::kReject:
      x = nftnl_expr_alloc("reject");
      nftnl_expr_set_u32(x, NFTNL_EXPR_REJECT_TYPE, e.key);
      nftnl_expr_set_u8(x, NFTNL_EXPR_REJECT_CODE, static_cast<uint8_t>(e.op));
      break;
    case Expr::Kind::kDynsetUpdate:
      x = nftnl_expr_alloc("dynset");
      nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_KEY, e.sreg);
      nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
      if (e.sreg2 != 0) nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_DATA, e.sreg2);
      nftnl_expr_set_str(x, NFTNL_EXPR_DYNSET_SET_NAME, e.name.c_str());
      break;
  }
  nftnl_rule_add_expr(r, x);
}

}  // namespace

// One netlink transaction under construction (libnftnl's multi-page batch).
class NftProgrammer::Batch {
 public:
  Batch(const std::string& table, uint32_t* seq) : table_(table), seq_(seq) {
    batch_ = nftnl_batch_alloc(1 << 20, 1 << 17);
    begin_seq_ = (*seq_)++;
    nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(batch_)), begin_seq_);
    nftnl_batch_update(batch_);
  }
  ~Batch() { nftnl_batch_free(batch_); }

  nlmsghdr* Header(uint16_t type, uint16_t flags) {
    last_seq_ = (*seq_)++;
    ++messages_;
    return nftnl_nlmsg_build_hdr(static_cast<char*>(nftnl_batch_buffer(batch_)), type, kFamily, flags, last_seq_);
  }
  void Next(nlmsghdr* last) {
    last_ = last;
    nftnl_batch_update(batch_);
  }

  void AddTable() {
    nftnl_table* t = nftnl_table_alloc();
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, table_.c_str());
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, kFamily);
    auto* h = Header(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    nftnl_table_nlmsg_build_payload(h, t);
    nftnl_table_free(t);
    Next(h);
  }
  void DelTable() {
    nftnl_table* t = nftnl_table_alloc();
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, table_.c_str());
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, kFamily);
    auto* h = Header(NFT_MSG_DELTABLE, 0);
    nftnl_table_nlmsg_build_payload(h, t);
    nftnl_table_free(t);
    Next(h);
  }
  void AddSet(const SetSpec& s) {
    nftnl_set* set = nftnl_set_alloc();
    nftnl_set_set_str(set, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(set, NFTNL_SET_NAME, s.name.c_str());
    nftnl_set_set_u32(set, NFTNL_SET_FAMILY, kFamily);
    nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, s.key_type);
    nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, s.key_len);
    nftnl_set_set_u32(set, NFTNL_SET_FLAGS, s.flags);
    nftnl_set_set_u32(set, NFTNL_SET_ID, next_set_id_++);
    if (s.verdict_map) nftnl_set_set_u32(set, NFTNL_SET_DATA_TYPE, NFT_DATA_VERDICT);
    if (s.data_len != 0) {
      nftnl_set_set_u32(set, NFTNL_SET_DATA_TYPE, s.data_type);
      nftnl_set_set_u32(set, NFTNL_SET_DATA_LEN, s.data_len);
    }
    if (s.timeout_ms != 0) nftnl_set_set_u64(set, NFTNL_SET_TIMEOUT, s.timeout_ms);
    if (s.size != 0) nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, s.size);
    auto* h = Header(NFT_MSG_NEWSET, NLM_F_CREATE);
    nftnl_set_nlmsg_build_payload(h, set);
    nftnl_set_free(set);
    Next(h);
  }
  void DelSet(const std::string& name) {
    nftnl_set* set = nftnl_set_alloc();
    nftnl_set_set_str(set, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(set, NFTNL_SET_NAME, name.c_str());
    auto* h = Header(NFT_MSG_DELSET, 0);
    nftnl_set_nlmsg_build_payload(h, set);
    nftnl_set_free(set);
    Next(h);
  }
  void AddChain(const ChainSpec& c) {
    nftnl_chain* ch = nftnl_chain_alloc();
    nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table_.c_str());
    nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, c.name.c_str());
    if (c.base) {
      nftnl_chain_set_u32(ch, NFTNL_CHAIN_HOOKNUM, c.hook);
      nftnl_chain_set_s32(ch, NFTNL_CHAIN_PRIO, c.priority);
      nftnl_chain_set_str(ch, NFTNL_CHAIN_TYPE, c.type.c_str());
      nftnl_chain_set_u32(ch, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    }
    auto* h = Header(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    nftnl_chain_nlmsg_build_payload(h, ch);
    nftnl_chain_free(ch);
    Next(h);
  }
  void ChainOp(uint16_t type, const std::string& chain) {
    nftnl_chain* ch = nftnl_chain_alloc();
    nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, table_.c_str());
    nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, chain.c_str());
    auto* h = Header(type, 0);
    nftnl_chain_nlmsg_build_payload(h, ch);
    nftnl_chain_free(ch);
    Next(h);
  }
  void FlushChain(const std::string& chain) {
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table_.c_str());
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain.c_str());
    auto* h = Header(NFT_MSG_DELRULE, 0);
    nftnl_rule_nlmsg_build_payload(h, r);
    nftnl_rule_free(r);
    Next(h);
  }
  void DelChain(const std::string& chain) { ChainOp(NFT_MSG_DELCHAIN, chain); }

  void AddRule(const std::string& chain, const Rule& rule) {
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table_.c_str());
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, kFamily);
    for (const auto& e : rule.exprs) AddExpr(r, e);
    std::string tag = RuleTag(rule);
    nftnl_udata_buf* ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, tag.c_str());
    nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud));
    nftnl_udata_buf_free(ud);
    auto* h = Header(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
    nftnl_rule_nlmsg_build_payload(h, r);
    nftnl_rule_free(r);
    Next(h);
  }
  void AddRules(const ChainSpec& c) {
    for (const auto& r : c.rules) AddRule(c.name, r);
  }

  // Elements of one set, `kElementsPerMessage` per message.
  void Elements(uint16_t type, const std::string& set_name, const std::vector<const Element*>& elems) {
    for (size_t i = 0; i < elems.size(); i += kElementsPerMessage) {
      nftnl_set* set = nftnl_set_alloc();
      nftnl_set_set_str(set, NFTNL_SET_TABLE, table_.c_str());
      nftnl_set_set_str(set, NFTNL_SET_NAME, set_name.c_str());
      for (size_t j = i; j < std::min(elems.size(), i + kElementsPerMessage); ++j) {
        nftnl_set_elem* e = nftnl_set_elem_alloc();
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, elems[j]->key.data(), elems[j]->key.size());
        if (type == NFT_MSG_NEWSETELEM && !elems[j]->chain.empty()) {
          nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, NFT_GOTO);
          nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, elems[j]->chain.c_str());
        }
        if (type == NFT_MSG_NEWSETELEM && !elems[j]->data.empty()) {
          nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, elems[j]->data.data(), elems[j]->data.size());
        }
        nftnl_set_elem_add(set, e);
      }
      auto* h = Header(type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
      nftnl_set_elems_nlmsg_build_payload(h, set);
      nftnl_set_free(set);
      Next(h);
    }
  }
  void ElementsGrouped(uint16_t type, const std::vector<const Element*>& elems) {
    std::map<std::string, std::vector<const Element*>> by_set;
    for (const auto* e : elems) by_set[e->set].push_back(e);
    for (const auto& [set, v] : by_set) Elements(type, set, v);
  }

  // Removes every element of a set (a DELSETELEM without elements).
  void FlushSet(const std::string& name) {
    nftnl_set* set = nftnl_set_alloc();
    nftnl_set_set_str(set, NFTNL_SET_TABLE, table_.c_str());
    nftnl_set_set_str(set, NFTNL_SET_NAME, name.c_str());
    auto* h = Header(NFT_MSG_DELSETELEM, 0);
    nftnl_set_elems_nlmsg_build_payload(h, set);
    nftnl_set_free(set);
    Next(h);
  }

  void InjectFailure() {
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table_.c_str());
    nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, "rc-injected-failure");
    auto* h = Header(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
    nftnl_rule_nlmsg_build_payload(h, r);
    nftnl_rule_free(r);
    Next(h);
  }

  // Closes the batch; the last message asks for an ACK so success is confirmed.
  void Finish() {
    if (last_ != nullptr) last_->nlmsg_flags |= NLM_F_ACK;
    nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(batch_)), (*seq_)++);
    nftnl_batch_update(batch_);
  }

  nftnl_batch* batch_ = nullptr;
  const std::string& table_;
  uint32_t* seq_;
  uint32_t begin_seq_ = 0, last_seq_ = 0;
  size_t messages_ = 0;
  nlmsghdr* last_ = nullptr;
  uint32_t next_set_id_ = 1;
};

Result<std::unique_ptr<NftProgrammer>> NftProgrammer::Open(NftProgrammerOptions options) {
  std::unique_ptr<NftProgrammer> p(new NftProgrammer(std::move(options)));
  int err = 0;
  std::string where;
  auto open = [&] {
    if (!p->options_.netns.empty()) {
      int fd = ::open(p->options_.netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        err = errno, where = "open " + p->options_.netns;
        return;
      }
      if (setns(fd, CLONE_NEWNET) != 0) {
        err = errno, where = "setns " + p->options_.netns;
        ::close(fd);
        return;
      }
      ::close(fd);
    }
    p->nl_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (p->nl_ == nullptr) {
      err = errno, where = "netlink socket";
      return;
    }
    if (mnl_socket_bind(p->nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      err = errno, where = "netlink bind";
      return;
    }
  };
  if (p->options_.netns.empty()) {
    open();
  } else {
    std::thread t(open);  // setns affects this thread only; the socket stays in the namespace
    t.join();
  }
  if (err != 0) return Status::Unavailable(where + ": " + Errno(err));
  p->portid_ = mnl_socket_get_portid(p->nl_);
  int rcv = 16 << 20;
  setsockopt(mnl_socket_get_fd(p->nl_), SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv);
  p->seq_ = static_cast<uint32_t>(time(nullptr));
  return p;
}

NftProgrammer::~NftProgrammer() {
  if (nl_ != nullptr) mnl_socket_close(nl_);
}

Status NftProgrammer::Commit(Batch& b, TransactionStats* stats) {
  if (inject_failures_.load() > 0) {
    inject_failures_.fetch_sub(1);
    b.InjectFailure();
  }
  b.Finish();
  int iovlen = nftnl_batch_iovec_len(b.batch_);
  std::vector<iovec> iov(iovlen);
  nftnl_batch_iovec(b.batch_, iov.data(), iovlen);
  size_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  int fd = mnl_socket_get_fd(nl_);
  int snd = static_cast<int>(std::min<size_t>(total + (1 << 16), 1u << 30));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  msghdr msg{};
  msg.msg_name = &kernel;
  msg.msg_namelen = sizeof kernel;
  msg.msg_iov = iov.data();
  msg.msg_iovlen = iov.size();
  if (stats != nullptr) stats->messages = b.messages_, stats->bytes = total;
  if (sendmsg(fd, &msg, 0) < 0) return Status::Unavailable("netlink sendmsg: " + Errno(errno));
  // Errors for failed messages and the ACK of the last one arrive after the kernel has committed
  // or aborted the whole batch.
  std::vector<char> buf(1 << 16);
  int first_error = 0;
  uint32_t error_seq = 0;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    int pr = poll(&pfd, 1, 60000);
    if (pr <= 0) return Status::Unavailable("netlink: no reply to the batch");
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable("netlink recv: " + Errno(errno));
    }
    bool done = false;
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (e->error != 0 && first_error == 0) first_error = -e->error, error_seq = nlh->nlmsg_seq;
      if (nlh->nlmsg_seq == b.last_seq_ || (e->error != 0 && nlh->nlmsg_seq == b.begin_seq_)) done = true;
    }
    if (done) break;
  }
  if (first_error != 0) {
    return Status::Internal("nftables transaction aborted: " + Errno(first_error) + " (message " +
                            std::to_string(error_seq - b.begin_seq_) + " of " + std::to_string(b.messages_) + ")");
  }
  return Status::Ok();
}

Status NftProgrammer::ApplyFull(const Rendered& to, TransactionStats* stats) {
  std::lock_guard lock(mu_);
  Batch b(options_.table, &seq_);
  b.AddTable();  // so the delete below cannot fail on a missing table
  b.DelTable();
  b.AddTable();
  for (const auto& s : to.sets) b.AddSet(s);
  for (const auto& [id, p] : to.ports) {
    for (const auto& s : p.sets) b.AddSet(s);
  }
  for (const auto& c : to.chains) {
    if (!c.base) b.AddChain(c);
  }
  for (const auto& [id, p] : to.ports) {
    for (const auto& c : p.chains) b.AddChain(c);
  }
  for (const auto& [id, p] : to.ports) {
    for (const auto& c : p.chains) b.AddRules(c);
  }
  for (const auto& c : to.chains) {
    if (!c.base) b.AddRules(c);
  }
  std::vector<const Element*> elems;
  for (const auto& e : to.elements) elems.push_back(&e);
  for (const auto& [id, p] : to.ports) {
    for (const auto& e : p.elements) elems.push_back(&e);
  }
  b.ElementsGrouped(NFT_MSG_NEWSETELEM, elems);
  // Base chains last: the hooks see traffic only when everything they reach is in place (and in
  // any case the whole batch becomes visible at once).
  for (const auto& c : to.chains) {
    if (c.base) {
      b.AddChain(c);
      b.AddRules(c);
    }
  }
  return Commit(b, stats);
}

Status NftProgrammer::ApplyDelta(const Rendered& from, const Rendered& to, TransactionStats* stats) {
  std::lock_guard lock(mu_);
  Batch b(options_.table, &seq_);
  static const PortRendering kEmpty;
  std::vector<const SetSpec*> add_sets;
  std::vector<std::string> del_sets, flush_sets;
  // Affinity sets whose service's endpoints changed: after the commit, only their entries that
  // point at an endpoint no longer there go (clients of the others keep their endpoint).
  std::map<std::string, std::set<std::string>> prune_affinity;  // set -> the endpoints' data
  std::vector<const ChainSpec*> add_chains, refill_chains;
  std::vector<std::string> del_chains;
  std::vector<const Element*> add_elems, del_elems;
  auto diff = [&](const PortRendering& a, const PortRendering& z) {
    std::map<std::string, const SetSpec*> as, zs;
    for (const auto& s : a.sets) as[s.name] = &s;
    for (const auto& s : z.sets) zs[s.name] = &s;
    bool sets_recreated = false;  // then every chain referencing them is rewritten
    for (const auto& [n, s] : zs) {
      auto it = as.find(n);
      if (it == as.end()) {
        add_sets.push_back(s);
      } else if (!(*it->second == *s)) {
        sets_recreated = true;
        del_sets.push_back(n);  // recreated below (DELSET then NEWSET is valid in one batch)
        add_sets.push_back(s);
      }
    }
    for (const auto& [n, s] : as) {
      if (!zs.count(n)) {
        del_sets.push_back(n);
      } else if (*zs[n] == *s && !(a.elements == z.elements)) {
        if (n.rfind("aff-", 0) == 0) {
          auto& allowed = prune_affinity[n];
          const std::string eps = "eps-" + n.substr(4);
          for (const auto& e : z.elements) {
            if (e.set == eps) allowed.insert(e.data);
          }
        } else {
          flush_sets.push_back(n);
        }
      }
    }
    std::map<std::string, const ChainSpec*> ac, zc;
    for (const auto& c : a.chains) ac[c.name] = &c;
    for (const auto& c : z.chains) zc[c.name] = &c;
    for (const auto& [n, c] : zc) {
      auto it = ac.find(n);
      if (it == ac.end()) {
        add_chains.push_back(c);
      } else if (sets_recreated || !(*it->second == *c)) {
        refill_chains.push_back(c);
      }
    }
    for (const auto& [n, c] : ac) {
      if (!zc.count(n)) del_chains.push_back(n);
    }
    std::map<std::pair<std::string, std::string>, const Element*> ae, ze;
    for (const auto& e : a.elements) ae[{e.set, e.key}] = &e;
    for (const auto& e : z.elements) ze[{e.set, e.key}] = &e;
    for (const auto& [k, e] : ae) {
      auto it = ze.find(k);
      if (it == ze.end() || !(*it->second == *e)) del_elems.push_back(e);
    }
    for (const auto& [k, e] : ze) {
      auto it = ae.find(k);
      if (it == ae.end() || !(*it->second == *e)) add_elems.push_back(e);
    }
  };
  auto fi = from.ports.begin();
  auto ti = to.ports.begin();
  while (fi != from.ports.end() || ti != to.ports.end()) {
    if (ti == to.ports.end() || (fi != from.ports.end() && fi->first < ti->first)) {
      diff(fi->second, kEmpty);
      ++fi;
    } else if (fi == from.ports.end() || ti->first < fi->first) {
      diff(kEmpty, ti->second);
      ++ti;
    } else {
      if (!(fi->second == ti->second)) diff(fi->second, ti->second);
      ++fi, ++ti;
    }
  }
  // Order inside the transaction: references are always to objects that exist at that point.
  for (const auto* c : add_chains) b.AddChain(*c);
  for (const auto* c : refill_chains) b.FlushChain(c->name);
  for (const auto& n : del_chains) b.FlushChain(n);
  b.ElementsGrouped(NFT_MSG_DELSETELEM, del_elems);
  for (const auto& n : del_sets) b.DelSet(n);
  for (const auto& n : flush_sets) b.FlushSet(n);
  for (const auto* s : add_sets) b.AddSet(*s);
  for (const auto* c : add_chains) b.AddRules(*c);
  for (const auto* c : refill_chains) b.AddRules(*c);
  b.ElementsGrouped(NFT_MSG_NEWSETELEM, add_elems);
  for (const auto& n : del_chains) b.DelChain(n);
  if (b.messages_ == 0) return Status::Ok();
  Status committed = Commit(b, stats);
  if (!committed.ok()) return committed;
  for (const auto& [set, allowed] : prune_affinity) PruneAffinity(set, allowed);
  return Status::Ok();
}


Status NftProgrammer::DeleteTable() {
  std::lock_guard lock(mu_);
  Batch b(options_.table, &seq_);
  b.AddTable();
  b.DelTable();
  return Commit(b, nullptr);
}

namespace {

// Sends one dump request and calls on_msg for each reply message until NLMSG_DONE.
Status Dump(mnl_socket* nl, nlmsghdr* req, uint32_t seq, uint32_t portid,
            const std::function<void(const nlmsghdr*)>& on_msg) {
  if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0) return Status::Unavailable("netlink send: " + Errno(errno));
  std::vector<char> buf(1 << 17);
  for (;;) {
    pollfd pfd{mnl_socket_get_fd(nl), POLLIN, 0};
    if (poll(&pfd, 1, 30000) <= 0) return Status::Unavailable("netlink: dump timed out");
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable("netlink recv: " + Errno(errno));
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != seq) continue;  // stale replies of an earlier exchange
      if (nlh->nlmsg_type == NLMSG_DONE) return Status::Ok();
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (e->error == 0) return Status::Ok();
        if (e->error == -ENOENT) return Status::NotFound("nftables: " + Errno(-e->error));
        return Status::Unavailable("nftables dump: " + Errno(-e->error));
      }
      on_msg(nlh);
    }
  }
}

int AttrCb(const nlattr* attr, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  int type = mnl_attr_get_type(attr);
  if (type <= NFTA_RULE_MAX) tb[type] = attr;  // NFTA_RULE_MAX and NFTA_CHAIN_MAX are both small
  return MNL_CB_OK;
}

}  // namespace

Result<Fingerprint> NftProgrammer::ReadFingerprint() {
  std::lock_guard lock(mu_);
  Fingerprint f;
  std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
  // The table itself.
  {
    nftnl_table* t = nftnl_table_alloc();
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, options_.table.c_str());
    uint32_t seq = seq_++;
    auto* h = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETTABLE, kFamily, NLM_F_ACK, seq);
    nftnl_table_nlmsg_build_payload(h, t);
    nftnl_table_free(t);
    Status s = Dump(nl_, h, seq, portid_, [](const nlmsghdr*) {});
    if (!s.ok()) return s;
  }
  // Chains (the kernel dumps every table's; keep ours).
  {
    uint32_t seq = seq_++;
    auto* h = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETCHAIN, kFamily, NLM_F_DUMP, seq);
    Status s = Dump(nl_, h, seq, portid_, [&](const nlmsghdr* nlh) {
      const nlattr* tb[NFTA_RULE_MAX + 1] = {};
      mnl_attr_parse(nlh, sizeof(nfgenmsg), AttrCb, tb);
      if (tb[NFTA_CHAIN_TABLE] == nullptr || tb[NFTA_CHAIN_NAME] == nullptr) return;
      if (options_.table != mnl_attr_get_str(tb[NFTA_CHAIN_TABLE])) return;
      f.chains[mnl_attr_get_str(tb[NFTA_CHAIN_NAME])];
    });
    if (!s.ok()) return s;
  }
  // Rules of our table, in order.
  {
    nftnl_rule* r = nftnl_rule_alloc();
    nftnl_rule_set_str(r, NFTNL_RULE_TABLE, options_.table.c_str());
    uint32_t seq = seq_++;
    auto* h = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETRULE, kFamily, NLM_F_DUMP, seq);
    nftnl_rule_nlmsg_build_payload(h, r);
    nftnl_rule_free(r);
    Status s = Dump(nl_, h, seq, portid_, [&](const nlmsghdr* nlh) {
      const nlattr* tb[NFTA_RULE_MAX + 1] = {};
      mnl_attr_parse(nlh, sizeof(nfgenmsg), AttrCb, tb);
      if (tb[NFTA_RULE_TABLE] == nullptr || tb[NFTA_RULE_CHAIN] == nullptr) return;
      if (options_.table != mnl_attr_get_str(tb[NFTA_RULE_TABLE])) return;
      std::string tag;
      if (tb[NFTA_RULE_USERDATA] != nullptr) {
        const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NFTA_RULE_USERDATA]));
        uint16_t n = mnl_attr_get_payload_len(tb[NFTA_RULE_USERDATA]);
        // TLVs: type (1 byte), length (1 byte), value.
        for (uint16_t i = 0; i + 2 <= n && i + 2 + p[i + 1] <= n; i += 2 + p[i + 1]) {
          if (p[i] == NFTNL_UDATA_RULE_COMMENT && p[i + 1] > 0) {
            tag.assign(reinterpret_cast<const char*>(p + i + 2), strnlen(reinterpret_cast<const char*>(p + i + 2), p[i + 1]));
          }
        }
      }
      f.chains[mnl_attr_get_str(tb[NFTA_RULE_CHAIN])].push_back(std::move(tag));
    });
    if (!s.ok()) return s;
  }
  // Elements of every set that is not filled by the packet path (affinity sets are).
  std::vector<std::string> static_sets;
  {
    nftnl_set* set = nftnl_set_alloc();
    nftnl_set_set_str(set, NFTNL_SET_TABLE, options_.table.c_str());
    uint32_t seq = seq_++;
    auto* h = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETSET, kFamily, NLM_F_DUMP, seq);
    nftnl_set_nlmsg_build_payload(h, set);
    nftnl_set_free(set);
    Status s = Dump(nl_, h, seq, portid_, [&](const nlmsghdr* nlh) {
      nftnl_set* got = nftnl_set_alloc();
      if (nftnl_set_nlmsg_parse(nlh, got) == 0 && options_.table == nftnl_set_get_str(got, NFTNL_SET_TABLE) &&
          !(nftnl_set_get_u32(got, NFTNL_SET_FLAGS) & NFT_SET_EVAL)) {
        static_sets.emplace_back(nftnl_set_get_str(got, NFTNL_SET_NAME));
      }
      nftnl_set_free(got);
    });
    if (!s.ok()) return s;
  }
  for (const auto& name : static_sets) {
    const std::string& set_name = name;
    auto& entries = f.elements[set_name];
    Status s = DumpSetElements(set_name, [&](nftnl_set_elem* e) {
      uint32_t klen = 0;
      const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
      std::string value;
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) {
        value = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
      } else if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
        uint32_t dlen = 0;
        const void* d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
        value = "=" + HexBytes(std::string(static_cast<const char*>(d), dlen));
      }
      entries.push_back(ElementEntry(std::string(static_cast<const char*>(key), klen), value));
    });
    if (s.IsNotFound()) {
      f.elements.erase(set_name);
      continue;
    }
    if (!s.ok()) return s;
  }
  for (auto& [n, v] : f.elements) std::sort(v.begin(), v.end());
  return f;
}

Status NftProgrammer::DumpSetElements(const std::string& set_name, const std::function<void(nftnl_set_elem*)>& each) {
  std::vector<char> req(MNL_SOCKET_BUFFER_SIZE);
  nftnl_set* set = nftnl_set_alloc();
  nftnl_set_set_str(set, NFTNL_SET_TABLE, options_.table.c_str());
  nftnl_set_set_str(set, NFTNL_SET_NAME, set_name.c_str());
  uint32_t seq = seq_++;
  auto* h = nftnl_nlmsg_build_hdr(req.data(), NFT_MSG_GETSETELEM, kFamily, NLM_F_DUMP, seq);
  nftnl_set_elems_nlmsg_build_payload(h, set);
  nftnl_set_free(set);
  return Dump(nl_, h, seq, portid_, [&](const nlmsghdr* nlh) {
    nftnl_set* got = nftnl_set_alloc();
    if (nftnl_set_elems_nlmsg_parse(nlh, got) == 0) {
      nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(got);
      for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr; e = nftnl_set_elems_iter_next(it)) each(e);
      nftnl_set_elems_iter_destroy(it);
    }
    nftnl_set_free(got);
  });
}

void NftProgrammer::PruneAffinity(const std::string& set_name, const std::set<std::string>& allowed) {
  std::vector<Element> stale;
  Status dumped = DumpSetElements(set_name, [&](nftnl_set_elem* e) {
    uint32_t klen = 0, dlen = 0;
    const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
    const void* data = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
    if (!key || !data) return;
    std::string d(static_cast<const char*>(data), dlen);
    if (!allowed.count(d)) stale.push_back({set_name, std::string(static_cast<const char*>(key), klen), "", ""});
  });
  spdlog::debug("proxy: affinity {}: dump {}, {} stale entries", set_name, dumped.ToString(), stale.size());
  Batch b(options_.table, &seq_);
  if (!dumped.ok()) {
    b.FlushSet(set_name);  // unreadable: forget every client's choice rather than keep dead ones
  } else if (!stale.empty()) {
    std::vector<const Element*> elems;
    for (const auto& e : stale) elems.push_back(&e);
    b.ElementsGrouped(NFT_MSG_DELSETELEM, elems);
  } else {
    return;
  }
  Status pruned = Commit(b, nullptr);
  if (!pruned.ok()) spdlog::debug("proxy: affinity {}: pruning: {} (flushing it)", set_name, pruned.ToString());
  if (Status s = pruned; !s.ok() && dumped.ok()) {
    // An entry expired between the dump and the delete (the kernel refuses the whole batch).
    Batch flush(options_.table, &seq_);
    flush.FlushSet(set_name);
    (void)Commit(flush, nullptr);
  }
}

}  // namespace rc::proxy
