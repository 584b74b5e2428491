// serve_loop.h: the server's lifetime in the CLI.
#include "serve_loop.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.h"

namespace qforge::cli {
namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void record_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

}  // namespace

void serve_until_signal(const ServerConfig& config, Engine candidate,
                        std::optional<Engine> baseline) {
  g_stop_signal.store(0);
  struct sigaction sa = {};
  sa.sa_handler = record_stop_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int = {}, old_term = {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  auto server = value_or_fail(Server::create(config, std::move(candidate), std::move(baseline)));
  ok_or_fail(server->start());
  std::printf("qforge serve: listening on http://%s:%d%s\n", config.host.c_str(), server->port(),
              config.api_key.empty() ? "" : " (API key required)");
  std::fflush(stdout);
  while (g_stop_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::printf("qforge serve: %s received, finishing in-flight requests\n",
              g_stop_signal.load() == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  server->shutdown();
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  std::printf("qforge serve: stopped\n");
  std::fflush(stdout);
}

}  // namespace qforge::cli
