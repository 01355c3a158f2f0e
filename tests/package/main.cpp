// Compiles the public contracts against the installed package and checks that they behave
// as their comments say.
#include <ccproxy/observability.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace obs = ccproxy::observability;

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::fprintf(stderr, "consumer: check failed: %s\n", #cond); \
      return EXIT_FAILURE;                                         \
    }                                                              \
  } while (0)

int main() {
  obs::Fields f{{"method", "POST"}, {"status_code", 200}};
  CHECK(f.find("status_code")->as_int() == 200);

  std::puts("consumer: ok");
  return EXIT_SUCCESS;
}
