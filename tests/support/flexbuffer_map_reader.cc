// Prints a FlexBuffer map read as TF Serving reads signature_defs_metadata (signature_def_util.cc):
// each key, and each value through AsString().c_str(), as "key length hex" lines.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#include "flatbuffers/flexbuffers.h"
int main(int argc, char** argv) {
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto map = flexbuffers::GetRoot(data.data(), data.size()).AsMap();
  for (size_t i = 0; i < map.Keys().size(); ++i) {
    const std::string key = map.Keys()[i].AsString().c_str();
    const std::string value = map[key].AsString().c_str();
    printf("%s %zu ", key.c_str(), value.size());
    for (unsigned char c : value) printf("%02x", c);
    printf("\n");
  }
}
