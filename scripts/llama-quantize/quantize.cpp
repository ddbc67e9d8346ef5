// llama.cpp's own quantizer (llama_model_quantize from the libllama node-llama-cpp ships) as a peer for
// `npm run bench:quality`. Built at bench time by build.sh into .cache/llama-quantize/ (never at install).
//   llama-quantize-peer IN.gguf OUT.gguf FTYPE NTHREAD [IMATRIX.bin] [--output-type T] [--token-embedding-type T]
// FTYPE is llama.cpp's llama_ftype number (Q4_0 = 2, Q2_K = 10, Q3_K_M = 12, Q4_K_M = 15).
// --output-type / --token-embedding-type T: the ggml_type number (F32 = 0, F16 = 1, Q6_K = 14) for output.weight
// and token_embd.weight (llama_model_quantize_params.output_tensor_type / token_embedding_type); by default
// llama.cpp picks them from FTYPE (output Q6_K, token_embd the file type or near it). `--output-type 1
// --token-embedding-type 1` keeps both in F16, as edgeq's checkpoints keep the embedding and the head.
// IMATRIX.bin (optional, written by the bench): "EQIM" u32 count, then per entry u32 name length, name bytes,
// u32 n, n float32 values (mean x² per input channel of the GGUF tensor `name`).
// No llama.h is shipped, so only what is used is declared here, from include/llama.h of the llama.cpp release
// node-llama-cpp was built from (node_modules/node-llama-cpp/llama/llama.cpp.info.json); the struct is filled by
// llama_model_quantize_default_params() and only nthread, ftype, imatrix and (when given) the two tensor types are changed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
struct llama_model_imatrix_data {
  const char *name;
  const float *data;
  size_t size;
};
struct llama_model_quantize_params {
  int32_t nthread;
  int32_t ftype;                 // enum llama_ftype
  int32_t output_tensor_type;    // enum ggml_type
  int32_t token_embedding_type;  // enum ggml_type
  bool allow_requantize;
  bool quantize_output_tensor;
  bool only_copy;
  bool pure;
  bool keep_split;
  bool dry_run;
  const llama_model_imatrix_data *imatrix;
  const void *kv_overrides;
  const void *tt_overrides;
  const int32_t *prune_layers;
  size_t max_buf_size;
};
llama_model_quantize_params llama_model_quantize_default_params(void);
uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const llama_model_quantize_params *params);
void llama_backend_init(void);
}

static bool read_imatrix(const char *path, std::vector<std::string> &names, std::vector<std::vector<float>> &values) {
  FILE *f = std::fopen(path, "rb");
  if (!f) return false;
  char magic[4];
  uint32_t count = 0;
  bool ok = std::fread(magic, 1, 4, f) == 4 && std::memcmp(magic, "EQIM", 4) == 0 && std::fread(&count, 4, 1, f) == 1;
  for (uint32_t i = 0; ok && i < count; i++) {
    uint32_t len = 0, n = 0;
    ok = std::fread(&len, 4, 1, f) == 1 && len < 4096;
    if (!ok) break;
    std::string name(len, '\0');
    ok = std::fread(&name[0], 1, len, f) == len && std::fread(&n, 4, 1, f) == 1 && n < (1u << 26);
    if (!ok) break;
    std::vector<float> v(n);
    ok = std::fread(v.data(), 4, n, f) == n;
    names.push_back(name);
    values.push_back(std::move(v));
  }
  std::fclose(f);
  return ok;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s IN.gguf OUT.gguf FTYPE NTHREAD [IMATRIX.bin] [--output-type T] [--token-embedding-type T]\n", argv[0]);
    return 2;
  }
  llama_backend_init();
  llama_model_quantize_params p = llama_model_quantize_default_params();
  p.nthread = std::atoi(argv[4]);
  p.ftype = std::atoi(argv[3]);
  const char *imatrix_file = nullptr;
  for (int a = 5; a < argc; a++) {
    const std::string opt = argv[a];
    if ((opt == "--output-type" || opt == "--token-embedding-type") && a + 1 < argc) {
      const int t = std::atoi(argv[++a]);
      (opt == "--output-type" ? p.output_tensor_type : p.token_embedding_type) = t;
    } else if (opt.rfind("--", 0) == 0) {
      std::fprintf(stderr, "unknown option %s\n", argv[a]);
      return 2;
    } else imatrix_file = argv[a];
  }
  std::vector<std::string> names;
  std::vector<std::vector<float>> values;
  std::vector<llama_model_imatrix_data> im;
  if (imatrix_file) {
    if (!read_imatrix(imatrix_file, names, values)) {
      std::fprintf(stderr, "bad imatrix file %s\n", imatrix_file);
      return 3;
    }
    for (size_t i = 0; i < names.size(); i++) im.push_back({names[i].c_str(), values[i].data(), values[i].size()});
    im.push_back({nullptr, nullptr, 0});
    p.imatrix = im.data();
  }
  uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
  if (rc != 0) {
    std::fprintf(stderr, "llama_model_quantize failed (%u)\n", rc);
    return 1;
  }
  return 0;
}
