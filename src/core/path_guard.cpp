// Output-path guards (path_guard.h).
#include "qforge/core/path_guard.h"

#include <sys/stat.h>

#include <string>
#include <system_error>

namespace qforge {
namespace {

namespace fs = std::filesystem;

const char* file_type_name(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISREG(mode)) return "a regular file";
  return "not a regular file";
}

}  // namespace

fs::path resolve_path(const fs::path& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) abs = path;
  fs::path r = fs::weakly_canonical(abs, ec);
  if (ec) r = abs.lexically_normal();
  // weakly_canonical keeps a trailing separator ("dir/" -> "dir/"); drop it so that comparisons
  // are component-wise on names only.
  if (!r.has_filename() && r.has_parent_path() && r != r.root_path()) r = r.parent_path();
  return r;
}

bool path_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o) {
    if (o->empty()) continue;  // a trailing separator
    while (i != inner.end() && i->empty()) ++i;
    if (i == inner.end() || *i != *o) return false;
    ++i;
  }
  return true;
}

Status check_replaceable(const fs::path& path, OutputKind kind, std::string_view what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ok_status();  // missing: created fresh
  const bool ok = kind == OutputKind::kFile ? S_ISREG(st.st_mode) : S_ISDIR(st.st_mode);
  if (ok) return ok_status();
  return make_error(ErrorCode::kInvalidArgument,
                    "{} '{}' exists and is {}; qforge only replaces {} (remove it or choose "
                    "another path)",
                    what, path.string(), file_type_name(st.st_mode),
                    kind == OutputKind::kFile ? "regular files" : "directories");
}

Status check_output_path(const fs::path& output, std::span<const fs::path> inputs, OutputKind kind,
                         std::string_view what) {
  if (output.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: empty output path", what);
  }
  const fs::path out = resolve_path(output);
  // The output's own name unresolved (a symbolic link named as the output is replaced, not
  // followed, by a rename) as well as resolved.
  fs::path out_link = resolve_path(output.lexically_normal().parent_path());
  if (output.lexically_normal().has_filename()) out_link /= output.lexically_normal().filename();
  std::error_code ec;
  const bool out_exists = fs::exists(fs::symlink_status(output, ec));
  for (const fs::path& input : inputs) {
    if (input.empty()) continue;
    const fs::path in = resolve_path(input);
    const char* relation = nullptr;
    if (out == in || out_link == in) {
      relation = "is";
    } else if (path_within(in, out) || path_within(in, out_link)) {
      relation = "contains";
    } else if (path_within(out, in) || path_within(out_link, in)) {
      relation = "is inside";
    } else if (out_exists && fs::exists(input, ec) && fs::equivalent(output, input, ec) && !ec) {
      relation = "is the same file as";
    }
    if (relation != nullptr) {
      return make_error(ErrorCode::kInvalidArgument,
                        "{} '{}' {} the input '{}' ({}); writing it would destroy or alter an "
                        "input, choose an output path outside every input",
                        what, output.string(), relation, input.string(), in.string());
    }
  }
  return check_replaceable(output, kind, what);
}

}  // namespace qforge
