// The engine file's integrity check: a 64-bit hash of each tensor's bytes (and of the header),
// fast enough to verify a multi-GB engine at load (four independent multiply-rotate lanes over
// 32-byte stripes, then a final avalanche). Not cryptographic: it catches bit flips and
// truncation, not an adversary who rewrites the checksums too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace qforge::engine_detail {

uint64_t checksum64(std::span<const std::byte> bytes);
// checksum64 split over qforge's threads in fixed 4 MiB pieces whose checksums are hashed
// together, so the value does not depend on the thread count.
uint64_t checksum64_parallel(std::span<const std::byte> bytes);
// 16 lowercase hex digits, and back (false on anything else).
std::string checksum_hex(uint64_t value);
bool parse_checksum_hex(const std::string& text, uint64_t* value);

}  // namespace qforge::engine_detail
