// Golden blocks for edgeq's GGUF codecs, produced by llama.cpp's own code: the reference quantizers
// (quantize_row_*_ref) and dequantizers (dequantize_row_*) exported by the libggml-base.so that
// node-llama-cpp ships. Build and run with scripts/ggml-golden/make-golden.sh.
//
// Output (in the directory given as argv[1]):
//   input.f32             N fixed seeded float32 inputs (several distributions, see makeInput)
//   <type>.q              quantize_row_<type>_ref(input) blocks
//   <type>.deq.f32        dequantize_row_<type>(<type>.q)
//   <type>.rand.q         RANDOM_BLOCKS blocks of seeded random bytes (finite fp16 scales)
//   <type>.rand.deq.f32   dequantize_row_<type>(<type>.rand.q)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
void quantize_row_q4_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q8_0_ref(const float *x, void *y, int64_t k);
void quantize_row_q2_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q3_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q4_K_ref(const float *x, void *y, int64_t k);
void quantize_row_q6_K_ref(const float *x, void *y, int64_t k);
void dequantize_row_q4_0(const void *x, float *y, int64_t k);
void dequantize_row_q8_0(const void *x, float *y, int64_t k);
void dequantize_row_q2_K(const void *x, float *y, int64_t k);
void dequantize_row_q3_K(const void *x, float *y, int64_t k);
void dequantize_row_q4_K(const void *x, float *y, int64_t k);
void dequantize_row_q6_K(const void *x, float *y, int64_t k);
}

static const int N = 4096;          // 16 super-blocks of 256
static const int RANDOM_BLOCKS = 4; // random-byte blocks per type

struct Type {
  const char *name;
  int blockSize;
  int typeSize;
  void (*quantize)(const float *, void *, int64_t);
  void (*dequantize)(const void *, float *, int64_t);
  std::vector<int> halfOffsets; // byte offsets of fp16 fields in a block (kept finite in random blocks)
};

// splitmix64: seeded, portable
static uint64_t state = 0x5eed0f9915ULL;
static uint64_t next() {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
static double gauss() {
  double u = uniform(), v = uniform();
  if (u < 1e-300) u = 1e-300;
  return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

// 16 super-blocks, each a different kind of data weights can hold.
static void makeInput(std::vector<float> &x) {
  for (int b = 0; b < N / 256; b++) {
    float *p = &x[b * 256];
    for (int i = 0; i < 256; i++) {
      double g = gauss();
      double v;
      switch (b) {
        case 0: v = 0.02 * g; break;                                   // typical weight scale
        case 1: v = g; break;                                          // unit gaussian
        case 2: v = 2.0 * uniform() - 1.0; break;                      // uniform
        case 3: v = 0.02 * g + (i % 37 == 0 ? 0.5 * (g > 0 ? 1 : -1) : 0); break; // outliers
        case 4: v = 0.0; break;                                        // all zero
        case 5: v = 0.125; break;                                      // constant positive
        case 6: v = -std::fabs(0.05 * g); break;                       // all negative
        case 7: v = std::fabs(0.05 * g); break;                        // all positive
        case 8: v = 1e-6 * g; break;                                   // tiny (fp16 subnormal scales)
        case 9: v = 300.0 * g; break;                                  // large
        case 10: v = (i / 16) % 2 ? 0.0 : 0.03 * g; break;             // zero sub-blocks
        case 11: v = std::round(4.0 * g) / 4.0; break;                 // already on a grid
        case 12: v = 0.01 * g * (1 + i / 32); break;                   // growing sub-block scales
        case 13: v = (i % 2 ? 1.0 : -1.0) * (0.1 + 0.01 * (i % 7)); break; // alternating signs
        case 14: v = 0.02 * g * (i < 128 ? 1.0 : 0.001); break;         // two magnitudes
        default: v = 0.5 * g * g * g; break;                           // heavy tails
      }
      p[i] = (float)v;
    }
  }
}

static void writeFile(const std::string &path, const void *data, size_t bytes) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, bytes, f) != bytes) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: golden OUT_DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  std::vector<float> x(N);
  makeInput(x);
  writeFile(dir + "/input.f32", x.data(), N * 4);
  const Type types[] = {
      {"q4_0", 32, 18, quantize_row_q4_0_ref, dequantize_row_q4_0, {0}},
      {"q8_0", 32, 34, quantize_row_q8_0_ref, dequantize_row_q8_0, {0}},
      {"q2_K", 256, 84, quantize_row_q2_K_ref, dequantize_row_q2_K, {80, 82}},
      {"q3_K", 256, 110, quantize_row_q3_K_ref, dequantize_row_q3_K, {108}},
      {"q4_K", 256, 144, quantize_row_q4_K_ref, dequantize_row_q4_K, {0, 2}},
      {"q6_K", 256, 210, quantize_row_q6_K_ref, dequantize_row_q6_K, {208}},
  };
  for (const Type &t : types) {
    size_t qBytes = (size_t)N / t.blockSize * t.typeSize;
    std::vector<uint8_t> q(qBytes);
    std::vector<float> y(N);
    t.quantize(x.data(), q.data(), N);
    t.dequantize(q.data(), y.data(), N);
    writeFile(dir + "/" + t.name + ".q", q.data(), qBytes);
    writeFile(dir + "/" + t.name + ".deq.f32", y.data(), N * 4);
    // random blocks: every byte random except fp16 fields, which get a random finite value in ±2^-4..2^4
    int nr = RANDOM_BLOCKS * (t.blockSize == 32 ? 8 : 1);
    std::vector<uint8_t> r((size_t)nr * t.typeSize);
    for (auto &b : r) b = (uint8_t)(next() & 0xff);
    for (int b = 0; b < nr; b++) {
      for (int off : t.halfOffsets) {
        uint16_t h = (uint16_t)((next() & 0x8000) | ((11 + next() % 8) << 10) | (next() & 0x3ff));
        std::memcpy(&r[(size_t)b * t.typeSize + off], &h, 2);
      }
    }
    std::vector<float> ry((size_t)nr * t.blockSize);
    t.dequantize(r.data(), ry.data(), (int64_t)nr * t.blockSize);
    writeFile(dir + "/" + t.name + ".rand.q", r.data(), r.size());
    writeFile(dir + "/" + t.name + ".rand.deq.f32", ry.data(), ry.size() * 4);
  }
  std::printf("wrote goldens for %d inputs into %s\n", N, dir.c_str());
  return 0;
}
