// SentencePiece .model files through libsentencepiece (encode), with a bounds-checked walk of the
// protobuf first (clear errors for files that are not ModelProtos) and a decoder that streams
// token by token with SentencePiece's rules (control tokens vanish, <0xNN> pieces are raw bytes,
// the dummy-prefix space of the first piece is dropped).
#include <sentencepiece_processor.h>

#include <exception>

#include "qforge/tokenizer/tokenizer_formats.h"
#include "tokenizer/vocab.h"

namespace qforge {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

// One field of a protobuf message (wire format), or an error naming the byte offset.
struct ProtoField {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t varint = 0;
  std::string_view bytes;  // wire type 2
};

class ProtoReader {
 public:
  ProtoReader(std::string_view data, size_t base) : data_(data), base_(base) {}
  bool done() const { return pos_ >= data_.size(); }

  Result<ProtoField> next() {
    ProtoField f;
    QF_ASSIGN_OR_RETURN(uint64_t key, varint());
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    switch (f.wire_type) {
      case 0: {
        QF_ASSIGN_OR_RETURN(f.varint, varint());
        break;
      }
      case 1:
        QF_TRY(skip(8));
        break;
      case 5:
        QF_TRY(skip(4));
        break;
      case 2: {
        QF_ASSIGN_OR_RETURN(uint64_t len, varint());
        if (len > data_.size() - pos_) {
          return make_error(ErrorCode::kFormat,
                            "field {} at byte {} has length {} but only {} bytes are left",
                            f.number, base_ + pos_, len, data_.size() - pos_);
        }
        f.bytes = data_.substr(pos_, len);
        pos_ += len;
        break;
      }
      default:
        return make_error(ErrorCode::kFormat, "unknown protobuf wire type {} at byte {}",
                          f.wire_type, base_ + pos_);
    }
    if (f.number == 0) {
      return make_error(ErrorCode::kFormat, "protobuf field number 0 at byte {}", base_ + pos_);
    }
    return f;
  }
  size_t offset() const { return base_ + pos_; }

 private:
  Result<uint64_t> varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) {
        return make_error(ErrorCode::kFormat, "truncated varint at byte {}", base_ + pos_);
      }
      const auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return make_error(ErrorCode::kFormat, "varint longer than 10 bytes at byte {}", base_ + pos_);
  }
  Status skip(size_t n) {
    if (n > data_.size() - pos_) {
      return make_error(ErrorCode::kFormat, "truncated fixed-width field at byte {}", base_ + pos_);
    }
    pos_ += n;
    return ok_status();
  }

  std::string_view data_;
  size_t base_;
  size_t pos_ = 0;
};

// NormalizerSpec.precompiled_charsmap, as libsentencepiece's Normalizer reads it (it checks none
// of this itself, so a garbage charsmap makes it read wild addresses while encoding):
//   uint32 trie_bytes (little-endian); trie_bytes of darts-clone double array (uint32 units);
//   then the blob of NUL-terminated normalized strings that the trie's values point into.
// A darts-clone unit: bits 0-7 label (bit 31 set on value units, which never match a byte),
// bit 8 has_leaf, bits 10-31 offset (shifted left by 8 more when bit 9 is set), bits 0-30 the
// value of a value unit. commonPrefixSearch starts at unit 0, goes to `pos ^ offset(unit)`, then
// for each input byte c reads unit `pos ^ c` and continues while its label is c; at a unit with
// has_leaf it reads the value unit at `pos ^ offset`. Every unit reachable that way, and every
// value, is checked here: a unit read must lie inside the array, a value must start a string
// that ends with a NUL inside the blob.
Status check_precompiled_charsmap(std::string_view blob, std::string_view field) {
  if (blob.empty()) return ok_status();  // no charsmap: the identity normalizer
  if (blob.size() < 4) {
    return make_error(ErrorCode::kFormat, "{}: {} bytes, too short for its 4-byte trie size", field,
                      blob.size());
  }
  uint32_t trie_bytes = 0;
  for (int i = 0; i < 4; ++i) {
    trie_bytes |= static_cast<uint32_t>(static_cast<uint8_t>(blob[i])) << (8 * i);
  }
  if (trie_bytes > blob.size() - 4) {
    return make_error(ErrorCode::kFormat,
                      "{}: trie size {} bytes runs past the {} bytes that follow it", field,
                      trie_bytes, blob.size() - 4);
  }
  const uint64_t n_units = trie_bytes / 4;
  if (n_units == 0) {
    return make_error(ErrorCode::kFormat, "{}: empty trie (size {} bytes, needs >= 4)", field,
                      trie_bytes);
  }
  const std::string_view trie = blob.substr(4, n_units * 4);
  const std::string_view strings = blob.substr(4 + static_cast<size_t>(trie_bytes));
  const auto unit = [&](uint64_t i) {
    uint32_t u = 0;
    for (int b = 0; b < 4; ++b) {
      u |= static_cast<uint32_t>(static_cast<uint8_t>(trie[4 * i + b])) << (8 * b);
    }
    return u;
  };
  const auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  const auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1) == 1; };
  const auto label = [](uint32_t u) { return u & ((1u << 31) | 0xFF); };
  // A value v starts a NUL-terminated string inside the blob iff v <= the last NUL's position.
  const size_t last_nul = strings.rfind('\0');
  std::vector<uint8_t> visited(n_units, 0);
  std::vector<uint64_t> stack = {0};
  visited[0] = 1;
  while (!stack.empty()) {
    const uint64_t pos = stack.back();
    stack.pop_back();
    // The children of `pos` are units base ^ c for c in 0..255, so base | 0xFF must be inside.
    const uint64_t base = pos ^ offset(unit(pos));
    if ((base | 0xFF) >= n_units) {
      return make_error(ErrorCode::kFormat,
                        "{}: trie unit {} points to children at {}..{}, outside the {} units "
                        "of the trie",
                        field, pos, base & ~uint64_t{0xFF}, base | 0xFF, n_units);
    }
    for (uint32_t c = 0; c < 256; ++c) {  // the input may hold NUL bytes too
      const uint64_t child = base ^ c;
      const uint32_t u = unit(child);
      if (label(u) != c) continue;
      if (has_leaf(u)) {
        const uint64_t value_at = child ^ offset(u);
        if (value_at >= n_units) {
          return make_error(ErrorCode::kFormat,
                            "{}: trie unit {} has its value at unit {}, outside the {} units",
                            field, child, value_at, n_units);
        }
        const uint32_t value = unit(value_at) & 0x7FFFFFFFu;
        if (last_nul == std::string_view::npos || value > last_nul) {
          return make_error(ErrorCode::kFormat,
                            "{}: trie unit {} maps to normalized string offset {}, which does "
                            "not start a NUL-terminated string inside the {}-byte blob",
                            field, child, value, strings.size());
        }
      }
      if (!visited[child]) {
        visited[child] = 1;
        stack.push_back(child);
      }
    }
  }
  return ok_status();
}

// Walks a NormalizerSpec (ModelProto field 3 normalizer_spec, 5 denormalizer_spec) for the
// fields this file reads, validating its precompiled_charsmap (field 2).
template <typename Summary>
Status scan_normalizer_spec(std::string_view bytes, size_t at, const char* name, Summary* s) {
  ProtoReader spec(bytes, at);
  while (!spec.done()) {
    QF_ASSIGN_OR_RETURN(ProtoField nf, spec.next());
    if (nf.number == 2 && nf.wire_type == 2) {
      QF_TRY(check_precompiled_charsmap(nf.bytes, fmt::format("{}.precompiled_charsmap", name)));
    }
    if (s != nullptr && nf.number == 3 && nf.wire_type == 0) s->add_dummy_prefix = nf.varint != 0;
    if (s != nullptr && nf.number == 4 && nf.wire_type == 0) {
      s->remove_extra_whitespaces = nf.varint != 0;
    }
  }
  return ok_status();
}

struct ModelSummary {
  int64_t pieces = 0;
  int64_t model_type = 1;  // TrainerSpec.model_type: UNIGRAM = 1 (the default), BPE, WORD, CHAR
  bool add_dummy_prefix = true;  // NormalizerSpec defaults
  bool remove_extra_whitespaces = true;
};

// Walks ModelProto { repeated SentencePiece pieces = 1; TrainerSpec = 2; NormalizerSpec = 3; ... }.
Result<ModelSummary> scan_model_proto(std::string_view data) {
  ModelSummary s;
  ProtoReader top(data, 0);
  while (!top.done()) {
    const size_t at = top.offset();
    QF_ASSIGN_OR_RETURN(ProtoField f, top.next());
    if (f.number == 1) {
      if (f.wire_type != 2) {
        return make_error(ErrorCode::kFormat, "pieces[{}] at byte {} is not a message", s.pieces,
                          at);
      }
      ProtoReader piece(f.bytes, at);
      bool has_piece = false;
      while (!piece.done()) {
        QF_ASSIGN_OR_RETURN(ProtoField pf, piece.next());
        if (pf.number == 1 && pf.wire_type == 2) {
          if (pf.bytes.empty() || pf.bytes.size() > static_cast<size_t>(kMaxPieceBytes)) {
            return make_error(ErrorCode::kFormat, "pieces[{}].piece has {} bytes, expected 1..{}",
                              s.pieces, pf.bytes.size(), kMaxPieceBytes);
          }
          // libsentencepiece builds a darts-clone trie of NUL-terminated keys: a piece holding a
          // NUL byte (first byte NUL: a zero-length key) makes it throw out of the loader.
          if (pf.bytes.find('\0') != std::string_view::npos) {
            return make_error(ErrorCode::kFormat, "pieces[{}].piece holds a NUL byte (at {})",
                              s.pieces, pf.bytes.find('\0'));
          }
          has_piece = true;
        }
      }
      if (!has_piece) {
        return make_error(ErrorCode::kFormat, "pieces[{}] at byte {} has no piece string", s.pieces,
                          at);
      }
      if (++s.pieces > kMaxVocabSize) {
        return make_error(ErrorCode::kFormat, "more than {} pieces", kMaxVocabSize);
      }
    } else if (f.number == 2 && f.wire_type == 2) {
      ProtoReader spec(f.bytes, at);
      while (!spec.done()) {
        QF_ASSIGN_OR_RETURN(ProtoField tf, spec.next());
        if (tf.number == 3 && tf.wire_type == 0) s.model_type = static_cast<int64_t>(tf.varint);
      }
    } else if (f.number == 3 && f.wire_type == 2) {
      QF_TRY(scan_normalizer_spec(f.bytes, at, "normalizer_spec", &s));
    } else if (f.number == 5 && f.wire_type == 2) {
      QF_TRY(scan_normalizer_spec<ModelSummary>(f.bytes, at, "denormalizer_spec", nullptr));
    }
  }
  if (s.pieces == 0) return make_error(ErrorCode::kFormat, "no pieces (field 1 of ModelProto)");
  return s;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string source, ModelSummary summary)
      : source_(std::move(source)), summary_(summary) {}

  Status load(std::string_view bytes) {
    sentencepiece::util::Status status;
    try {
      status = sp_.LoadFromSerializedProto(bytes);
    } catch (const std::exception& e) {  // darts-clone throws on keys it cannot insert
      return make_error(ErrorCode::kFormat, "{}: libsentencepiece rejects the model: {}", source_,
                        e.what());
    }
    if (!status.ok()) {
      return make_error(ErrorCode::kFormat, "{}: libsentencepiece rejects the model: {}", source_,
                        status.ToString());
    }
    const int n = sp_.GetPieceSize();
    text_.resize(n);
    types_.resize(n);
    starts_with_space_.assign(n, 0);
    for (int id = 0; id < n; ++id) {
      const std::string piece = sp_.IdToPiece(id);
      TokenType type = TokenType::kNormal;
      if (sp_.IsControl(id)) type = TokenType::kControl;
      if (sp_.IsUnknown(id)) type = TokenType::kUnknown;
      if (sp_.IsUnused(id)) type = TokenType::kUnused;
      if (sp_.IsByte(id)) type = TokenType::kByte;
      types_[id] = type;
      if (type == TokenType::kControl) continue;
      if (type == TokenType::kUnknown) {
        text_[id] = sp_.DecodeIds({id});
        continue;
      }
      if (type == TokenType::kByte) {
        const int b = tokenizer::parse_byte_piece(piece);
        if (b >= 0) text_[id] = std::string(1, static_cast<char>(b));
        continue;
      }
      starts_with_space_[id] = piece.compare(0, kSpaceSymbol.size(), kSpaceSymbol) == 0;
      std::string& t = text_[id];
      for (size_t pos = 0; pos < piece.size();) {
        if (piece.compare(pos, kSpaceSymbol.size(), kSpaceSymbol) == 0) {
          t.push_back(' ');
          pos += kSpaceSymbol.size();
        } else {
          t.push_back(piece[pos++]);
        }
      }
    }
    return ok_status();
  }

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_bos) const override {
    std::vector<int> ids;
    const auto status = sp_.Encode(text, &ids);
    if (!status.ok()) {
      return make_error(ErrorCode::kInvalidArgument, "{}: encode: libsentencepiece: {}", source_,
                        status.ToString());
    }
    std::vector<int32_t> out;
    out.reserve(ids.size() + 1);
    if (add_bos && sp_.bos_id() >= 0) out.push_back(sp_.bos_id());
    out.insert(out.end(), ids.begin(), ids.end());
    return out;
  }

  Result<std::string> decode_next(int32_t previous, int32_t id) const override {
    if (id < 0 || id >= vocab_size()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{}: decode: id {} is outside the vocabulary [0, {})", source_, id,
                        vocab_size());
    }
    const bool first =
        previous < 0 || (previous < vocab_size() && types_[previous] == TokenType::kControl);
    if (first && starts_with_space_[id] &&
        (summary_.add_dummy_prefix || summary_.remove_extra_whitespaces)) {
      return text_[id].substr(1);
    }
    return text_[id];
  }

  std::string piece(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? sp_.IdToPiece(id) : std::string();
  }
  int32_t vocab_size() const override { return sp_.GetPieceSize(); }
  int32_t bos_id() const override { return sp_.bos_id(); }
  int32_t eos_id() const override { return sp_.eos_id(); }
  // "sentencepiece" for BPE models (the Llama family); the other model types are named.
  std::string kind() const override {
    switch (summary_.model_type) {
      case 2:
        return "sentencepiece";
      case 3:
        return "sentencepiece-word";
      case 4:
        return "sentencepiece-char";
      default:
        return "sentencepiece-unigram";
    }
  }
  TokenType token_type(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? types_[id] : TokenType::kNormal;
  }
  float token_score(int32_t id) const override {
    return id >= 0 && id < vocab_size() ? sp_.GetScore(id) : 0.0f;
  }
  int32_t token_id(std::string_view piece) const override {
    const int id = sp_.PieceToId(piece);
    // PieceToId answers unk_id for unknown pieces.
    return id == sp_.unk_id() && piece != sp_.IdToPiece(id) ? -1 : id;
  }

 private:
  std::string source_;
  ModelSummary summary_;
  sentencepiece::SentencePieceProcessor sp_;
  std::vector<std::string> text_;
  std::vector<TokenType> types_;
  std::vector<uint8_t> starts_with_space_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_sentencepiece_model(std::span<const std::byte> bytes,
                                                             const std::string& source) {
  if (bytes.size() > kMaxTokenizerFileBytes) {
    return make_error(ErrorCode::kFormat, "{}: {} bytes is larger than the {} byte limit", source,
                      bytes.size(), kMaxTokenizerFileBytes);
  }
  const std::string_view data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto summary = scan_model_proto(data);
  if (!summary.ok()) {
    return make_error(ErrorCode::kFormat, "{}: not a SentencePiece model (ModelProto): {}", source,
                      summary.error().message());
  }
  auto t = std::make_unique<SentencePieceTokenizer>(source, *summary);
  QF_TRY(t->load(data));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace qforge
