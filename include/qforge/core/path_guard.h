// Output-path guards shared by every command that writes or replaces a path: an output must never
// be (or hold, or sit inside) one of the command's inputs, and an existing output must be a kind
// of thing we are willing to replace (a regular file, or a directory for directory outputs) —
// never a device node, a FIFO, a socket or a symbolic link.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

#include "qforge/core/error.h"

namespace qforge {

enum class OutputKind { kFile, kDirectory };

// `path` made absolute, with every symbolic link of its existing part resolved and "." / ".."
// folded (std::filesystem::weakly_canonical on the absolute path).
std::filesystem::path resolve_path(const std::filesystem::path& path);

// True when `inner` is `outer` or lies below it (both already resolved; compared component-wise,
// so /a/bc is not inside /a/b).
bool path_within(const std::filesystem::path& inner, const std::filesystem::path& outer);

// Refuses (kInvalidArgument) to write or replace `output` when, after resolve_path(), it equals
// one of `inputs`, contains one (an ancestor directory), or lies inside one (a file or directory
// within an input directory), or when it is the same file as an input (a hard link, a bind
// mount). Empty input paths are ignored. `what` names the option in the error ("--output").
// Also refuses an existing `output` that is not a regular file (kFile) or a directory
// (kDirectory): see check_replaceable().
Status check_output_path(const std::filesystem::path& output,
                         std::span<const std::filesystem::path> inputs, OutputKind kind,
                         std::string_view what);

// Refuses an existing `path` (looked at with lstat: a symbolic link is not followed) that is not
// a regular file (kFile) or a real directory (kDirectory). A missing path is fine.
Status check_replaceable(const std::filesystem::path& path, OutputKind kind, std::string_view what);

}  // namespace qforge
