// Parse tree -> AST. The only file that sees ANTLR types.
#include <antlr4-runtime.h>

#include <cmath>
#include <functional>
#include <set>

#include "RcLexer.h"
#include "RcParser.h"
#include "rc/dsl/ast.h"

namespace rc::dsl {
namespace {

using rcgen::RcLexer;
using rcgen::RcParser;

// ANTLR indexes code points; diagnostics and ranges use byte offsets into the file.
struct OffsetMap {
  uint32_t base = 0;
  std::vector<uint32_t> byte_of;  // empty: the text is ASCII, indexes are bytes
  uint32_t operator()(size_t index) const {
    if (byte_of.empty()) return base + static_cast<uint32_t>(index);
    if (index >= byte_of.size()) return base + (byte_of.empty() ? 0 : byte_of.back());
    return base + byte_of[index];
  }
  static OffsetMap For(const std::string& text, uint32_t base) {
    OffsetMap m;
    m.base = base;
    bool ascii = true;
    for (unsigned char c : text) if (c >= 0x80) { ascii = false; break; }
    if (ascii) return m;
    for (uint32_t i = 0; i < text.size(); ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) m.byte_of.push_back(i);
    }
    m.byte_of.push_back(static_cast<uint32_t>(text.size()));
    return m;
  }
};

// Offset of the first "${" nested deeper than `max` inside strings, if any. A linear pre-scan:
// the lexer's recursive string rule is slow on pathological nesting.
std::optional<uint32_t> DeepInterpolation(const std::string& s, int max) {
  // Stack of contexts: 'c' code (inside an interpolation: counts its braces), 's' string.
  std::vector<std::pair<char, int>> stack{{'c', 0}};
  int interp_depth = 0;
  for (uint32_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    auto& top = stack.back();
    if (top.first == 's') {
      if (c == '\\') { ++i; continue; }
      if (c == '"' || c == '\n') { stack.pop_back(); continue; }
      if (c == '$' && i + 1 < s.size() && s[i + 1] == '{') {
        if (++interp_depth > max) return i;
        stack.push_back({'c', 0});
        ++i;
      }
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {  // line comment
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '"') { stack.push_back({'s', 0}); continue; }
    if (c == '{') {
      if (++top.second > max && stack.size() > 1) return i;  // braces inside an interpolation
      continue;
    }
    if (c == '}') {
      if (top.second > 0) { --top.second; continue; }
      if (stack.size() > 1) { stack.pop_back(); --interp_depth; }
    }
  }
  return std::nullopt;
}

// Offset of the first invalid UTF-8 sequence, or -1.
int64_t InvalidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || (n == 1 && c < 0xC2) || i + n >= s.size() + (n == 0 ? 1 : 0)) return static_cast<int64_t>(i);
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return static_cast<int64_t>(i);
    }
    i += n + 1;
  }
  return -1;
}

// Turns ANTLR's messages into ours, with a range at the offending token.
class ErrorCollector : public antlr4::BaseErrorListener {
 public:
  ErrorCollector(const SourceFile& file, Diagnostics& diags, const OffsetMap& map)
      : file_(file), diags_(diags), base_(map.base), map_(map) {}

  void syntaxError(antlr4::Recognizer*, antlr4::Token* offending, size_t, size_t,
                   const std::string& msg, std::exception_ptr) override {
    ++count;
    SourceRange range{&file_, base_, base_};
    if (offending) {
      if (offending->getType() == antlr4::Token::EOF) {
        range.begin = range.end = offending->getStartIndex() == size_t(-1)
                                      ? static_cast<uint32_t>(file_.text.size())
                                      : map_(offending->getStartIndex());
        if (range.begin > file_.text.size()) range.begin = range.end = file_.text.size();
      } else {
        range.begin = map_(offending->getStartIndex());
        range.end = map_(offending->getStopIndex() + 1);
      }
    } else if (lexer_offset_) {
      range.begin = map_(*lexer_offset_);
      range.end = range.begin + 1;
    }
    std::string message = Rewrite(msg);
    std::string hint;
    if (message.find("expected ';'") != std::string::npos || message.find("missing ';'") != std::string::npos) {
      hint = "declarations and statements end with ';'";
    }
    diags_.Error("E0001", range, message, hint);
  }

  static std::string Shorten(std::string set) {
    // "{'a', 'b', ...}" -> at most six choices.
    if (set.size() < 2 || set.front() != '{') return set;
    std::vector<std::string> parts;
    std::string inner = set.substr(1, set.size() - 2), cur;
    for (char c : inner) {
      if (c == ',') { parts.push_back(cur); cur.clear(); } else if (c != ' ' || !cur.empty()) cur += c;
    }
    if (!cur.empty()) parts.push_back(cur);
    std::string out = "one of ";
    for (size_t i = 0; i < parts.size() && i < 6; ++i) out += (i ? ", " : "") + parts[i];
    if (parts.size() > 6) out += ", ...";
    return out;
  }

  static std::string Rewrite(const std::string& msg) {
    auto after = [&](const std::string& prefix) -> std::optional<std::string> {
      if (msg.rfind(prefix, 0) == 0) return msg.substr(prefix.size());
      return std::nullopt;
    };
    auto fix_eof = [](std::string s) {
      size_t p;
      while ((p = s.find("'<EOF>'")) != std::string::npos) s.replace(p, 7, "end of file");
      while ((p = s.find("<EOF>")) != std::string::npos) s.replace(p, 5, "end of file");
      return s;
    };
    for (const char* prefix : {"mismatched input ", "extraneous input "}) {
      if (auto rest = after(prefix)) {
        size_t e = rest->find(" expecting ");
        if (e != std::string::npos) {
          return fix_eof("unexpected " + rest->substr(0, e) + ", expected " + Shorten(rest->substr(e + 11)));
        }
        return fix_eof("unexpected " + *rest);
      }
    }
    if (auto rest = after("missing ")) {
      size_t e = rest->find(" at ");
      if (e != std::string::npos) return fix_eof("missing " + rest->substr(0, e) + " before " + rest->substr(e + 4));
    }
    if (auto rest = after("no viable alternative at input ")) {
      // ANTLR quotes the whole ambiguous stretch; name only its last token.
      std::string s = *rest;
      if (s.size() > 2) {
        std::string inner = s.substr(1, s.size() - 2);
        size_t sp = inner.find_last_of(" \t\n");
        if (sp != std::string::npos) inner = inner.substr(sp + 1);
        return fix_eof("syntax error at '" + inner + "'");
      }
    }
    if (auto rest = after("token recognition error at: ")) return "invalid character " + *rest;
    return fix_eof(msg);
  }

  int count = 0;
  std::optional<uint32_t> lexer_offset_;

 private:
  const SourceFile& file_;
  Diagnostics& diags_;
  uint32_t base_;
  const OffsetMap& map_;
};

class LexerErrors : public antlr4::BaseErrorListener {
 public:
  explicit LexerErrors(ErrorCollector& c) : c_(c) {}
  void syntaxError(antlr4::Recognizer* r, antlr4::Token*, size_t, size_t, const std::string& msg,
                   std::exception_ptr e) override {
    auto* lexer = dynamic_cast<antlr4::Lexer*>(r);
    c_.lexer_offset_ = lexer ? static_cast<uint32_t>(lexer->tokenStartCharIndex) : 0;
    c_.syntaxError(r, nullptr, 0, 0, msg, e);
    c_.lexer_offset_.reset();
  }

 private:
  ErrorCollector& c_;
};

const std::set<std::string> kChainTokens = {"??", "?", "=>", "with", "+", "-", "*", "/", "%", "<",
                                            "<=", ">", ">=", "==", "!=", "&&", "||", "in", ".", "?."};

// Rejects input whose nesting would make the recursive-descent parser (and the later recursive
// phases) recurse too deeply. Returns false after reporting E0003.
bool CheckDepth(antlr4::CommonTokenStream& tokens, const SourceFile& file, Diagnostics& diags,
                const OffsetMap& map, int max_depth) {
  std::vector<int> chain{0};  // right-associative operator chain per bracket level
  std::vector<int> else_if{0};
  int prefix_run = 0;
  const auto& all = tokens.getTokens();
  for (size_t i = 0; i < all.size(); ++i) {
    antlr4::Token* t = all[i];
    if (t->getChannel() != antlr4::Token::DEFAULT_CHANNEL) continue;
    std::string s = t->getText();
    bool prefix = s == "!" || s == "-";
    prefix_run = prefix ? prefix_run + 1 : 0;
    if (s == "(" || s == "[" || s == "{") {
      chain.push_back(0);
      else_if.push_back(0);
    } else if (s == ")" || s == "]" || s == "}") {
      if (chain.size() > 1) { chain.pop_back(); else_if.pop_back(); }
      if (s == "}") {
        // An `else if` chain continues only through "} else".
        size_t j = i + 1;
        while (j < all.size() && all[j]->getChannel() != antlr4::Token::DEFAULT_CHANNEL) ++j;
        if (j >= all.size() || all[j]->getText() != "else") else_if.back() = 0;
      }
    } else if (s == ";" || s == ",") {
      chain.back() = 0;
    } else if (kChainTokens.count(s)) {
      // Operator chains build left- or right-deep trees that the later phases walk recursively.
      ++chain.back();
    } else if (s == "if" && i > 0 && all[i - 1]->getText() == "else") {
      ++else_if.back();
    }
    int depth = static_cast<int>(chain.size()) + chain.back() + else_if.back() + prefix_run;
    if (depth > max_depth) {
      SourceRange r{&file, map(t->getStartIndex()), map(t->getStopIndex() + 1)};
      diags.Error("E0003", r, "nesting too deep (more than " + std::to_string(max_depth) + " levels)",
                  "split the expression or block into smaller functions");
      return false;
    }
  }
  return true;
}

class Builder {
 public:
  Builder(const SourceFile& file, Diagnostics& diags, antlr4::CommonTokenStream& tokens,
          const OffsetMap& map, const ParseLimits& limits)
      : file_(file), diags_(diags), tokens_(tokens), base_(map.base), map_(map), limits_(limits) {}

  SourceRange Range(antlr4::ParserRuleContext* ctx) const {
    if (!ctx || !ctx->getStart()) return {&file_, base_, base_};
    uint32_t b = map_(ctx->getStart()->getStartIndex());
    antlr4::Token* stop = ctx->getStop();
    uint32_t e = stop && stop->getStopIndex() != size_t(-1) && stop->getStopIndex() + 1 >= ctx->getStart()->getStartIndex()
                     ? map_(stop->getStopIndex() + 1)
                     : b;
    if (e < b) e = b;
    return {&file_, b, e};
  }
  SourceRange Range(antlr4::tree::TerminalNode* node) const {
    if (!node) return {&file_, base_, base_};
    return Range(node->getSymbol());
  }
  SourceRange Range(antlr4::Token* t) const {
    if (!t || t->getStartIndex() == size_t(-1)) return {&file_, base_, base_};
    return {&file_, map_(t->getStartIndex()), map_(t->getStopIndex() + 1)};
  }
  static std::string Text(antlr4::tree::TerminalNode* n) { return n ? n->getText() : std::string(); }

  // "///" lines directly before the declaration's first token.
  std::string Doc(antlr4::ParserRuleContext* ctx) {
    if (!ctx || !ctx->getStart()) return "";
    auto hidden = tokens_.getHiddenTokensToLeft(ctx->getStart()->getTokenIndex(), 2);
    std::string doc;
    for (auto* t : hidden) {
      std::string line = t->getText().substr(3);
      if (!line.empty() && line[0] == ' ') line.erase(0, 1);
      doc += (doc.empty() ? "" : " ") + line;
    }
    return doc;
  }

  std::unique_ptr<Module> BuildFile(RcParser::FileContext* ctx) {
    auto m = std::make_unique<Module>();
    m->file = &file_;
    for (auto* imp : ctx->importDecl()) {
      ImportDecl d;
      d.range = Range(imp);
      d.path = Unquote(imp->STRING(), nullptr);
      d.alias = Text(imp->ID());
      m->imports.push_back(std::move(d));
    }
    for (auto* decl : ctx->decl()) {
      if (auto* r = decl->resourceDecl()) m->resources.push_back(BuildResource(r));
      else if (auto* s = decl->structDecl()) m->structs.push_back(BuildStruct(s));
      else if (auto* e = decl->enumDecl()) m->enums.push_back(BuildEnum(e));
      else if (auto* f = decl->fnDecl()) m->functions.push_back(BuildFn(f));
      else if (auto* c = decl->controllerDecl()) m->controllers.push_back(BuildController(c));
      else if (auto* k = decl->constDecl()) {
        auto c = std::make_unique<ConstDecl>();
        c->name = Text(k->ID());
        c->range = Range(k);
        if (k->typeExpr()) c->type = BuildType(k->typeExpr());
        c->value = BuildExpr(k->expr());
        m->consts.push_back(std::move(c));
      }
    }
    return m;
  }

  Setting BuildSetting(RcParser::SettingContext* s) {
    Setting out;
    out.name = Text(s->ID());
    out.range = Range(s);
    out.value = BuildExpr(s->expr());
    return out;
  }

  std::unique_ptr<ResourceDecl> BuildResource(RcParser::ResourceDeclContext* ctx) {
    auto r = std::make_unique<ResourceDecl>();
    r->name = Text(ctx->ID());
    r->range = Range(ctx);
    r->name_range = Range(ctx->ID());
    r->doc = Doc(ctx);
    for (auto* item : ctx->resourceItem()) {
      std::string first = item->getStart()->getText();
      if (first != "subresource" && first != "column" && !item->setting().empty()) {
        r->settings.push_back(BuildSetting(item->setting(0)));
      } else if (auto* f = item->fieldDecl()) {
        r->fields.push_back(BuildField(f));
      } else if (auto* rule = item->ruleDecl()) {
        r->rules.push_back(BuildRule(rule));
      } else if (first == "subresource") {
        Subresource sub;
        sub.range = Range(item);
        sub.name = item->ID().empty() ? "" : Text(item->ID(0));
        for (auto* s : item->setting()) sub.settings.push_back(BuildSetting(s));
        r->subresources.push_back(std::move(sub));
      } else if (first == "column") {
        ColumnDecl c;
        c.range = Range(item);
        c.name = Unquote(item->STRING(), nullptr);
        if (item->typeExpr()) c.type = BuildType(item->typeExpr());
        for (auto* id : item->ID()) c.flags.push_back(id->getText());
        c.value = BuildExpr(item->expr());
        r->columns.push_back(std::move(c));
      }
    }
    return r;
  }

  RuleDecl BuildRule(RcParser::RuleDeclContext* r) {
    RuleDecl out;
    out.range = Range(r);
    out.message = Unquote(r->STRING(), nullptr);
    if (r->qualifiedName()) out.field = r->qualifiedName()->getText();
    out.condition = BuildExpr(r->expr());
    return out;
  }

  FieldDecl BuildField(RcParser::FieldDeclContext* f) {
    FieldDecl d;
    d.range = Range(f);
    d.name_range = Range(f->name);
    d.name = f->name->ident() ? f->name->ident()->getText() : Unquote(f->name->STRING(), nullptr);
    d.doc = Doc(f);
    d.type = BuildType(f->typeExpr());
    for (auto* a : f->attribute()) {
      Attribute attr;
      attr.name = Text(a->ID());
      attr.range = Range(a);
      for (auto* e : a->expr()) attr.args.push_back(BuildExpr(e));
      d.attributes.push_back(std::move(attr));
    }
    if (f->expr()) d.default_value = BuildExpr(f->expr());
    return d;
  }

  std::unique_ptr<StructDecl> BuildStruct(RcParser::StructDeclContext* ctx) {
    auto s = std::make_unique<StructDecl>();
    s->name = Text(ctx->ID());
    s->range = Range(ctx);
    s->name_range = Range(ctx->ID());
    s->doc = Doc(ctx);
    for (auto* f : ctx->fieldDecl()) s->fields.push_back(BuildField(f));
    for (auto* r : ctx->ruleDecl()) s->rules.push_back(BuildRule(r));
    return s;
  }

  std::unique_ptr<EnumDecl> BuildEnum(RcParser::EnumDeclContext* ctx) {
    auto e = std::make_unique<EnumDecl>();
    e->name = Text(ctx->ID());
    e->range = Range(ctx);
    e->name_range = Range(ctx->ID());
    e->doc = Doc(ctx);
    for (auto* v : ctx->enumValue()) {
      e->values.push_back(v->ID() ? Text(v->ID()) : Unquote(v->STRING(), nullptr));
      e->value_ranges.push_back(Range(v));
    }
    return e;
  }

  std::unique_ptr<TypeExpr> BuildType(RcParser::TypeExprContext* ctx) {
    auto t = std::make_unique<TypeExpr>();
    t->range = Range(ctx);
    if (!ctx) return t;
    if (auto* o = dynamic_cast<RcParser::OptionalTypeContext*>(ctx)) {
      t->kind = TypeExpr::Kind::kOptional;
      t->inner = BuildType(o->typeExpr());
    } else if (auto* l = dynamic_cast<RcParser::ListTypeContext*>(ctx)) {
      t->kind = TypeExpr::Kind::kList;
      t->inner = BuildType(l->typeExpr());
    } else if (auto* m = dynamic_cast<RcParser::MapTypeContext*>(ctx)) {
      t->kind = TypeExpr::Kind::kMap;
      t->inner = BuildType(m->typeExpr());
    } else if (auto* n = dynamic_cast<RcParser::NamedTypeContext*>(ctx)) {
      t->name = n->qualifiedName()->getText();
    }
    return t;
  }

  Param BuildParam(RcParser::ParamContext* p) {
    Param out;
    out.name = Text(p->ID());
    out.range = Range(p);
    out.type = BuildType(p->typeExpr());
    return out;
  }

  std::unique_ptr<FnDecl> BuildFn(RcParser::FnDeclContext* ctx) {
    auto f = std::make_unique<FnDecl>();
    f->name = Text(ctx->ID());
    f->range = Range(ctx);
    f->name_range = Range(ctx->ID());
    f->doc = Doc(ctx);
    if (ctx->params()) {
      for (auto* p : ctx->params()->param()) f->params.push_back(BuildParam(p));
    }
    if (ctx->typeExpr()) f->result = BuildType(ctx->typeExpr());
    if (ctx->block()) {
      f->body = BuildBlock(ctx->block());
    } else if (ctx->expr()) {
      f->expression_bodied = true;
      auto ret = std::make_unique<Stmt>(StmtKind::kReturn, Range(ctx->expr()));
      ret->value = BuildExpr(ctx->expr());
      f->body.push_back(std::move(ret));
    }
    return f;
  }

  std::unique_ptr<ControllerDecl> BuildController(RcParser::ControllerDeclContext* ctx) {
    auto c = std::make_unique<ControllerDecl>();
    c->name = Text(ctx->ID());
    c->range = Range(ctx);
    c->name_range = Range(ctx->ID());
    c->doc = Doc(ctx);
    for (auto* item : ctx->controllerItem()) {
      if (auto* p = dynamic_cast<RcParser::PrimaryItemContext*>(item)) {
        c->primary = p->qualifiedName()->getText();
        c->primary_range = Range(p->qualifiedName());
      } else if (auto* o = dynamic_cast<RcParser::OwnsItemContext*>(item)) {
        c->owns.push_back(o->qualifiedName()->getText());
        c->owns_ranges.push_back(Range(o->qualifiedName()));
      } else if (auto* w = dynamic_cast<RcParser::WatchesItemContext*>(item)) {
        WatchDecl wd;
        wd.type_name = w->qualifiedName()->getText();
        wd.range = Range(w->qualifiedName());
        if (w->expr()) wd.mapping = BuildExpr(w->expr());
        c->watches.push_back(std::move(wd));
      } else if (auto* s = dynamic_cast<RcParser::SettingItemContext*>(item)) {
        c->settings.push_back(BuildSetting(s->setting()));
      } else if (auto* r = dynamic_cast<RcParser::ReconcileItemContext*>(item)) {
        auto f = std::make_unique<FnDecl>();
        f->name = "reconcile";
        f->range = Range(r);
        f->name_range = Range(r->getStart());
        if (r->param()) f->params.push_back(BuildParam(r->param()));
        f->body = BuildBlock(r->block());
        c->reconcile = std::move(f);
      } else if (auto* h = dynamic_cast<RcParser::HelperItemContext*>(item)) {
        c->helpers.push_back(BuildFn(h->fnDecl()));
      }
    }
    return c;
  }

  std::vector<StmtPtr> BuildBlock(RcParser::BlockContext* ctx) {
    std::vector<StmtPtr> out;
    if (!ctx) return out;
    for (auto* s : ctx->stmt()) {
      if (auto st = BuildStmt(s)) out.push_back(std::move(st));
    }
    return out;
  }

  StmtPtr BuildIfTail(antlr4::ParserRuleContext* ctx, RcParser::ExprContext* cond,
                      std::vector<RcParser::BlockContext*> blocks, RcParser::IfTailContext* tail) {
    auto s = std::make_unique<Stmt>(StmtKind::kIf, Range(ctx));
    s->value = BuildExpr(cond);
    if (!blocks.empty()) s->body = BuildBlock(blocks[0]);
    if (tail) {
      s->has_else = true;
      s->else_body.push_back(BuildIfTail(tail, tail->expr(), tail->block(), tail->ifTail()));
    } else if (blocks.size() > 1) {
      s->has_else = true;
      s->else_body = BuildBlock(blocks[1]);
    }
    return s;
  }

  StmtPtr BuildStmt(RcParser::StmtContext* ctx) {
    SourceRange r = Range(ctx);
    if (auto* l = dynamic_cast<RcParser::LetStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kLet, r);
      s->is_var = l->getStart()->getText() == "var";
      s->name = Text(l->ID());
      if (l->typeExpr()) s->declared = BuildType(l->typeExpr());
      s->value = BuildExpr(l->expr());
      return s;
    }
    if (auto* a = dynamic_cast<RcParser::AssignStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kAssign, r);
      s->target = BuildExpr(a->expr(0));
      s->value = BuildExpr(a->expr(1));
      return s;
    }
    if (auto* i = dynamic_cast<RcParser::IfStmtContext*>(ctx)) {
      return BuildIfTail(i, i->expr(), i->block(), i->ifTail());
    }
    if (auto* f = dynamic_cast<RcParser::ForStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kFor, r);
      auto ids = f->ID();
      if (ids.size() == 2) {
        s->name = Text(ids[0]);
        s->second_name = Text(ids[1]);
      } else if (!ids.empty()) {
        s->name = Text(ids[0]);
      }
      s->value = BuildExpr(f->expr());
      s->body = BuildBlock(f->block());
      return s;
    }
    if (auto* ret = dynamic_cast<RcParser::ReturnStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kReturn, r);
      if (ret->expr()) s->value = BuildExpr(ret->expr());
      return s;
    }
    if (auto* q = dynamic_cast<RcParser::RequeueStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kRequeue, r);
      s->value = BuildExpr(q->expr());
      return s;
    }
    if (auto* f = dynamic_cast<RcParser::FailStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kFail, r);
      s->value = BuildExpr(f->expr());
      return s;
    }
    if (dynamic_cast<RcParser::BreakStmtContext*>(ctx)) return std::make_unique<Stmt>(StmtKind::kBreak, r);
    if (dynamic_cast<RcParser::ContinueStmtContext*>(ctx)) return std::make_unique<Stmt>(StmtKind::kContinue, r);
    if (auto* b = dynamic_cast<RcParser::BlockStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kBlock, r);
      s->body = BuildBlock(b->block());
      return s;
    }
    if (auto* e = dynamic_cast<RcParser::ExprStmtContext*>(ctx)) {
      auto s = std::make_unique<Stmt>(StmtKind::kExpr, r);
      s->value = BuildExpr(e->expr());
      return s;
    }
    return nullptr;
  }

  ExprPtr Binary(antlr4::ParserRuleContext* ctx, std::string op, RcParser::ExprContext* a,
                 RcParser::ExprContext* b) {
    auto e = std::make_unique<Expr>(ExprKind::kBinary, Range(ctx));
    e->text = std::move(op);
    e->lhs = BuildExpr(a);
    e->rhs = BuildExpr(b);
    return e;
  }

  ExprPtr BuildExpr(RcParser::ExprContext* ctx) {
    // A missing operand after a syntax error: an unnamed name, which sema skips silently.
    if (!ctx) return std::make_unique<Expr>(ExprKind::kName, SourceRange{&file_, base_, base_});
    SourceRange r = Range(ctx);
    if (auto* p = dynamic_cast<RcParser::PrimaryExprContext*>(ctx)) return BuildPrimary(p->primary());
    if (auto* f = dynamic_cast<RcParser::FieldExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kField, r);
      e->lhs = BuildExpr(f->expr());
      e->text = f->ident()->getText();
      e->name_range = Range(f->ident());
      return e;
    }
    if (auto* f = dynamic_cast<RcParser::SafeFieldExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kSafeField, r);
      e->lhs = BuildExpr(f->expr());
      e->text = f->ident()->getText();
      e->name_range = Range(f->ident());
      return e;
    }
    if (auto* i = dynamic_cast<RcParser::IndexExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kIndex, r);
      e->lhs = BuildExpr(i->expr(0));
      e->rhs = BuildExpr(i->expr(1));
      return e;
    }
    if (auto* c = dynamic_cast<RcParser::CallExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kCall, r);
      e->lhs = BuildExpr(c->expr());
      if (c->args()) {
        for (auto* a : c->args()->arg()) {
          Arg arg;
          if (a->ID()) {
            arg.name = Text(a->ID());
            arg.name_range = Range(a->ID());
          }
          arg.value = BuildExpr(a->expr());
          e->args.push_back(std::move(arg));
        }
      }
      return e;
    }
    if (auto* w = dynamic_cast<RcParser::WithExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kWith, r);
      e->lhs = BuildExpr(w->expr());
      e->entries = BuildEntries(w->objectLit());
      return e;
    }
    if (auto* u = dynamic_cast<RcParser::UnaryExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kUnary, r);
      e->text = u->op->getText();
      e->lhs = BuildExpr(u->expr());
      return e;
    }
    if (auto* b = dynamic_cast<RcParser::MulExprContext*>(ctx)) return Binary(ctx, b->op->getText(), b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::AddExprContext*>(ctx)) return Binary(ctx, b->op->getText(), b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::RelExprContext*>(ctx)) return Binary(ctx, b->op->getText(), b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::EqExprContext*>(ctx)) return Binary(ctx, b->op->getText(), b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::InExprContext*>(ctx)) return Binary(ctx, "in", b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::AndExprContext*>(ctx)) return Binary(ctx, "&&", b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::OrExprContext*>(ctx)) return Binary(ctx, "||", b->expr(0), b->expr(1));
    if (auto* b = dynamic_cast<RcParser::CoalesceExprContext*>(ctx)) return Binary(ctx, "??", b->expr(0), b->expr(1));
    if (auto* c = dynamic_cast<RcParser::CondExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kCond, r);
      e->lhs = BuildExpr(c->expr(0));
      e->rhs = BuildExpr(c->expr(1));
      e->third = BuildExpr(c->expr(2));
      return e;
    }
    if (auto* l = dynamic_cast<RcParser::LambdaExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kLambda, r);
      for (auto* id : l->lambdaParams()->ID()) e->params.push_back(id->getText());
      e->body = BuildExpr(l->expr());
      return e;
    }
    return std::make_unique<Expr>(ExprKind::kName, r);  // error recovery: see above
  }

  std::vector<ObjectEntry> BuildEntries(RcParser::ObjectLitContext* ctx) {
    std::vector<ObjectEntry> out;
    if (!ctx) return out;
    for (auto* en : ctx->objectEntry()) {
      ObjectEntry oe;
      if (en->ident()) {
        oe.key = en->ident()->getText();
        oe.key_range = Range(en->ident());
      } else {
        oe.key = Unquote(en->STRING(), nullptr);
        oe.key_range = Range(en->STRING());
      }
      oe.value = BuildExpr(en->expr());
      out.push_back(std::move(oe));
    }
    return out;
  }

  ExprPtr BuildPrimary(RcParser::PrimaryContext* ctx) {
    SourceRange r = Range(ctx);
    if (auto* i = dynamic_cast<RcParser::IntLitContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kInt, r);
      errno = 0;
      std::string t = i->getText();
      char* end = nullptr;
      e->int_value = std::strtoll(t.c_str(), &end, 10);
      if (errno == ERANGE) diags_.Error("E0005", r, "integer literal out of range", "integers are 64-bit signed");
      return e;
    }
    if (auto* f = dynamic_cast<RcParser::FloatLitContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kFloat, r);
      e->float_value = std::strtod(f->getText().c_str(), nullptr);
      if (!std::isfinite(e->float_value)) diags_.Error("E0005", r, "float literal out of range");
      return e;
    }
    if (auto* s = dynamic_cast<RcParser::StringLitContext*>(ctx)) return BuildString(s->STRING());
    if (auto* d = dynamic_cast<RcParser::DurationLitContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kDuration, r);
      e->int_value = ParseDuration(d->getText(), r);
      return e;
    }
    if (auto* b = dynamic_cast<RcParser::BoolLitContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kBool, r);
      e->bool_value = b->getText() == "true";
      return e;
    }
    if (dynamic_cast<RcParser::NullLitContext*>(ctx)) return std::make_unique<Expr>(ExprKind::kNull, r);
    if (auto* n = dynamic_cast<RcParser::NameRefContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kName, r);
      e->text = n->getText();
      e->name_range = r;
      return e;
    }
    if (auto* p = dynamic_cast<RcParser::ParenExprContext*>(ctx)) return BuildExpr(p->expr());
    if (auto* l = dynamic_cast<RcParser::ListLitContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kList, r);
      for (auto* x : l->expr()) e->items.push_back(BuildExpr(x));
      return e;
    }
    if (auto* o = dynamic_cast<RcParser::ObjectExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kObject, r);
      e->entries = BuildEntries(o->objectLit());
      return e;
    }
    if (auto* n = dynamic_cast<RcParser::NewExprContext*>(ctx)) {
      auto e = std::make_unique<Expr>(ExprKind::kNew, r);
      e->text = n->qualifiedName()->getText();
      e->name_range = Range(n->qualifiedName());
      e->entries = BuildEntries(n->objectLit());
      return e;
    }
    return std::make_unique<Expr>(ExprKind::kName, r);  // error recovery
  }

  int64_t ParseDuration(const std::string& text, SourceRange r) {
    // ([0-9]+ (ms|s|m|h))+ in nanoseconds.
    __int128 total = 0;
    size_t i = 0;
    while (i < text.size()) {
      __int128 n = 0;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        n = n * 10 + (text[i] - '0');
        if (n > (static_cast<__int128>(1) << 80)) break;
        ++i;
      }
      __int128 unit = 0;
      if (text.compare(i, 2, "ms") == 0) { unit = 1000000; i += 2; }
      else if (text[i] == 's') { unit = 1000000000LL; ++i; }
      else if (text[i] == 'm') { unit = 60LL * 1000000000LL; ++i; }
      else if (text[i] == 'h') { unit = 3600LL * 1000000000LL; ++i; }
      else { ++i; }
      total += n * unit;
      if (total > INT64_MAX) {
        diags_.Error("E0005", r, "duration literal out of range", "durations are limited to about 292 years");
        return 0;
      }
    }
    return static_cast<int64_t>(total);
  }

  // Unescapes a STRING token; when `parts` is given, splits "${expr}" interpolation into parts.
  std::string Unquote(antlr4::tree::TerminalNode* node, std::vector<ExprPtr>* parts) {
    if (!node) return "";
    std::string raw = node->getText();
    // Positions inside the token: code point index of the token start + byte index into `raw`
    // is exact for ASCII; for other text, map the token start and count bytes from there.
    uint32_t start = map_(node->getSymbol()->getStartIndex());
    std::string out;
    for (size_t i = 1; i + 1 < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\\' && i + 2 < raw.size()) {
        char n = raw[++i];
        switch (n) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case '\\': out += '\\'; break;
          case '"': out += '"'; break;
          case '$': out += '$'; break;
          default: {
            SourceRange r{&file_, static_cast<uint32_t>(start + i - 1), static_cast<uint32_t>(start + i + 1)};
            diags_.Error("E0005", r, std::string("unknown escape sequence '\\") + n + "'",
                         "use \\n, \\t, \\r, \\\\, \\\" or \\$");
          }
        }
        continue;
      }
      if (parts && c == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
        size_t depth = 0, j = i + 1;
        bool in_str = false;
        for (; j + 1 < raw.size(); ++j) {
          char d = raw[j];
          if (in_str) {
            if (d == '\\') ++j;
            else if (d == '"') in_str = false;
            continue;
          }
          if (d == '"') in_str = true;  // only reachable through escapes; kept simple
          if (d == '{') ++depth;
          if (d == '}' && --depth == 0) break;
        }
        if (depth != 0 || j + 1 >= raw.size()) {
          SourceRange r{&file_, static_cast<uint32_t>(start + i), static_cast<uint32_t>(start + i + 2)};
          diags_.Error("E0006", r, "unterminated '${' in string", "close the interpolation with '}'");
          break;
        }
        auto lit = std::make_unique<Expr>(ExprKind::kString, SourceRange{&file_, start, start});
        lit->text = std::move(out);
        out.clear();
        parts->push_back(std::move(lit));
        parts->push_back(ParseInterpolation(raw.substr(i + 2, j - i - 2), start + static_cast<uint32_t>(i) + 2));
        i = j;
        continue;
      }
      out += c;
    }
    if (parts) {
      auto lit = std::make_unique<Expr>(ExprKind::kString, SourceRange{&file_, start, start});
      lit->text = out;
      parts->push_back(std::move(lit));
    }
    return out;
  }

  ExprPtr BuildString(antlr4::tree::TerminalNode* node) {
    SourceRange r = Range(node);
    std::vector<ExprPtr> parts;
    std::string text = Unquote(node, &parts);
    if (parts.size() <= 1) {
      auto e = std::make_unique<Expr>(ExprKind::kString, r);
      e->text = std::move(text);
      return e;
    }
    auto e = std::make_unique<Expr>(ExprKind::kInterpolated, r);
    for (auto& p : parts) {
      if (p->kind == ExprKind::kString && p->text.empty()) continue;
      e->items.push_back(std::move(p));
    }
    return e;
  }

  ExprPtr ParseInterpolation(const std::string& text, uint32_t offset);

 private:
  const SourceFile& file_;
  Diagnostics& diags_;
  antlr4::CommonTokenStream& tokens_;
  uint32_t base_;
  const OffsetMap& map_;
  const ParseLimits& limits_;
};

// Runs lexer + parser over `text` (which starts at byte `base` of the file). SLL first, then full
// LL with error recovery when SLL fails, as ANTLR recommends.
template <typename Fn>
auto ParseText(const SourceFile& file, Diagnostics& diags, const std::string& text, uint32_t base,
               const ParseLimits& limits, Fn&& build) -> decltype(build(std::declval<Builder&>(), std::declval<RcParser&>())) {
  OffsetMap map = OffsetMap::For(text, base);
  antlr4::ANTLRInputStream input(text);
  RcLexer lexer(&input);
  ErrorCollector errors(file, diags, map);
  LexerErrors lexer_errors(errors);
  lexer.removeErrorListeners();
  lexer.addErrorListener(&lexer_errors);
  antlr4::CommonTokenStream tokens(&lexer);
  tokens.fill();
  Builder builder(file, diags, tokens, map, limits);
  if (!CheckDepth(tokens, file, diags, map, limits.max_depth)) return nullptr;
  RcParser parser(&tokens);
  parser.removeErrorListeners();
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  try {
    auto result = build(builder, parser);
    parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->clearDFA();
    return result;
  } catch (const antlr4::ParseCancellationException&) {
  } catch (const antlr4::RecognitionException&) {
  }
  tokens.seek(0);
  parser.reset();
  parser.addErrorListener(&errors);
  parser.setErrorHandler(std::make_shared<antlr4::DefaultErrorStrategy>());
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::LL);
  auto result = build(builder, parser);
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->clearDFA();
  return result;
}

ExprPtr Builder::ParseInterpolation(const std::string& text, uint32_t offset) {
  ParseLimits inner = limits_;
  auto e = ParseText(file_, diags_, text, offset, inner, [](Builder& b, RcParser& p) -> ExprPtr {
    auto* ctx = p.exprOnly();
    return b.BuildExpr(ctx->expr());
  });
  if (!e) e = std::make_unique<Expr>(ExprKind::kNull, SourceRange{&file_, offset, offset});
  return e;
}

}  // namespace

std::unique_ptr<Module> Parse(const SourceFile& file, Diagnostics& diags, const ParseLimits& limits) {
  if (file.text.size() > limits.max_bytes) {
    diags.Error("E0004", SourceRange{&file, 0, 0},
                "file is too large (" + std::to_string(file.text.size()) + " bytes; the limit is " +
                    std::to_string(limits.max_bytes) + ")");
    auto m = std::make_unique<Module>();
    m->file = &file;
    return m;
  }
  if (int64_t bad = InvalidUtf8(file.text); bad >= 0) {
    diags.Error("E0007", SourceRange{&file, static_cast<uint32_t>(bad), static_cast<uint32_t>(bad) + 1},
                "invalid UTF-8 at byte " + std::to_string(bad), "source files must be UTF-8");
    auto m = std::make_unique<Module>();
    m->file = &file;
    return m;
  }
  if (auto deep = DeepInterpolation(file.text, 8)) {
    diags.Error("E0003", SourceRange{&file, *deep, *deep + 2},
                "string interpolation nested too deeply (more than 8 levels)",
                "move the inner expression into a let");
    auto m = std::make_unique<Module>();
    m->file = &file;
    return m;
  }
  std::unique_ptr<Module> m;
  try {
    m = ParseText(file, diags, file.text, 0, limits, [](Builder& b, RcParser& p) {
      auto* ctx = p.file();
      return b.BuildFile(ctx);
    });
  } catch (const std::exception& e) {
    diags.Error("E0000", SourceRange{&file, 0, 0}, std::string("internal parser error: ") + e.what());
  }
  if (!m) {
    m = std::make_unique<Module>();
    m->file = &file;
  }
  return m;
}

}  // namespace rc::dsl
