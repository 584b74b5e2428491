// ICU-backed normalization and lowercasing (see unicode_normalize.h).
#include "tokenizer/unicode_normalize.h"

#include <unicode/bytestream.h>
#include <unicode/casemap.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <algorithm>

namespace qforge::tokenizer {
namespace {

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

}  // namespace

Status unicode_normalize(UnicodeForm form, std::string_view in, std::string& out) {
  if (is_ascii(in)) {
    out.append(in);  // ASCII is invariant under all four forms
    return ok_status();
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  switch (form) {
    case UnicodeForm::kNFC:
      normalizer = icu::Normalizer2::getNFCInstance(status);
      break;
    case UnicodeForm::kNFD:
      normalizer = icu::Normalizer2::getNFDInstance(status);
      break;
    case UnicodeForm::kNFKC:
      normalizer = icu::Normalizer2::getNFKCInstance(status);
      break;
    case UnicodeForm::kNFKD:
      normalizer = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || normalizer == nullptr) {
    return make_error(ErrorCode::kInternal, "ICU normalizer unavailable: {}", u_errorName(status));
  }
  icu::StringByteSink<std::string> sink(&out);
  normalizer->normalizeUTF8(0, icu::StringPiece(in.data(), static_cast<int32_t>(in.size())), sink,
                            nullptr, status);
  if (U_FAILURE(status)) {
    return make_error(ErrorCode::kInvalidArgument, "ICU normalization failed: {}",
                      u_errorName(status));
  }
  return ok_status();
}

Status unicode_lowercase(std::string_view in, std::string& out) {
  if (is_ascii(in)) {
    for (char c : in) out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    return ok_status();
  }
  UErrorCode status = U_ZERO_ERROR;
  icu::StringByteSink<std::string> sink(&out);
  icu::CaseMap::utf8ToLower("", 0, icu::StringPiece(in.data(), static_cast<int32_t>(in.size())),
                            sink, nullptr, status);
  if (U_FAILURE(status)) {
    return make_error(ErrorCode::kInvalidArgument, "ICU lowercasing failed: {}",
                      u_errorName(status));
  }
  return ok_status();
}

}  // namespace qforge::tokenizer
