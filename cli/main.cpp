// kubectl-tasklease: the kubectl plugin (`kubectl tasklease ...`). Everything is in the
// tasklease_cli library; this only hands over the arguments and streams.

#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

int main(int argc, char** argv) {
  tasklease::cli::CliIo io{std::cin, std::cout, std::cerr};
  return tasklease::cli::runCli(std::vector<std::string>(argv + 1, argv + argc), io);
}
