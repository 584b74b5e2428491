// qforge: quantize, build, evaluate and serve LLMs. Dispatches to one file per subcommand.
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>

#include "commands.h"

int main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE (a quota, a capped container disk) then fails with EFBIG and a
  // clear message instead of killing the process mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{
      "qforge: LLM quantization toolkit and inference engine.\n"
      "Run `qforge <command> --help` for the options of each command."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  qforge::cli::register_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const qforge::cli::CliFailure& e) {
    std::fprintf(stderr, "qforge: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // An input that asked for more memory than there is: a message and exit 1, not an abort.
    std::fprintf(stderr,
                 "qforge: error: out of memory (an input asked for more memory than is "
                 "available; check the input files and sizes)\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qforge: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
