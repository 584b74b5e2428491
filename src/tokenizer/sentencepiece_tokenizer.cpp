// SentencePiece .model files through libsentencepiece (encode), with a bounds-checked walk of the
// protobuf first (clear errors for files that are not ModelProtos) and a decoder that streams
// token by token with SentencePiece's rules (control tokens vanish, <0xNN> pieces are raw bytes,
// the dummy-prefix space of the first piece is dropped).
#include <sentencepiece_processor.h>

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
      ProtoReader spec(f.bytes, at);
      while (!spec.done()) {
        QF_ASSIGN_OR_RETURN(ProtoField nf, spec.next());
        if (nf.number == 3 && nf.wire_type == 0) s.add_dummy_prefix = nf.varint != 0;
        if (nf.number == 4 && nf.wire_type == 0) s.remove_extra_whitespaces = nf.varint != 0;
      }
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
    const auto status = sp_.LoadFromSerializedProto(bytes);
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

  Result<std::string> decode(std::span<const int32_t> ids) const override {
    std::string out;
    int32_t previous = -1;
    for (int32_t id : ids) {
      QF_ASSIGN_OR_RETURN(std::string piece, decode_next(previous, id));
      out += piece;
      previous = id;
    }
    return out;
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
