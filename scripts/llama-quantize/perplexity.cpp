// Perplexity (and mean KL / top-1 against a base model) of GGUF files in llama.cpp, natively: the libllama
// node-llama-cpp ships, called directly (node-llama-cpp's JS API hands out logits one position at a time through
// its sampler, ~3 s per 256-token window for a 4096-token vocab; this takes milliseconds). Built by build.sh.
//   llama-ppl-peer TOKENS.u32 BOS CTX NWIN NTHREAD BASE.gguf [MODEL.gguf ...]
// TOKENS.u32: little-endian uint32 token ids (edgeq's tokenization of the text). edgeq's perplexity protocol
// (src/eval/perplexity.ts): window w = BOS + tokens[w·(CTX−1) … (w+1)·(CTX−1)), every window token scored
// (position i predicts token i+1), NLL in double. Each window runs in one batch from an empty F32 KV cache
// (no flash attention), as src/export/llamacpp-runner.ts sets up llama.cpp. Every model sees the same windows;
// models after the first are also compared with the first: mean KL(base ‖ model) per scored token and top-1
// agreement (argmax equal). Prints one JSON object on stdout:
//   {"ctx","windows","vocab","models":[{"file","nll","windowNll":[…],"kl","top1"}]}   (nll, kl: means per token)
// The API is used through include/llama.h of the llama.cpp source node-llama-cpp was built from (build.sh
// extracts it from node_modules/node-llama-cpp/llama/gitRelease.bundle).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

#ifndef BACKEND_DIR
#define BACKEND_DIR "."
#endif

struct Runner {
  llama_model *model = nullptr;
  llama_context *ctx = nullptr;
};

static Runner open_model(const char *file, int ctx, int threads) {
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.progress_callback = [](float, void *) { return true; };  // no progress dots
  Runner r;
  r.model = llama_model_load_from_file(file, mp);
  if (!r.model) {
    std::fprintf(stderr, "cannot load %s\n", file);
    std::exit(1);
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = ctx;
  cp.n_batch = ctx;
  cp.n_ubatch = ctx;
  cp.n_seq_max = 1;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  cp.type_k = GGML_TYPE_F32;
  cp.type_v = GGML_TYPE_F32;
  cp.no_perf = true;
  r.ctx = llama_init_from_model(r.model, cp);
  if (!r.ctx) {
    std::fprintf(stderr, "cannot create a context for %s\n", file);
    std::exit(1);
  }
  return r;
}

// log-softmax of one row into out (double), returns the argmax
static int log_softmax(const float *x, int n, std::vector<double> &out) {
  int best = 0;
  double mx = x[0];
  for (int i = 1; i < n; i++)
    if (x[i] > mx) mx = x[i], best = i;
  double s = 0;
  for (int i = 0; i < n; i++) s += std::exp(double(x[i]) - mx);
  const double lse = mx + std::log(s);
  for (int i = 0; i < n; i++) out[i] = double(x[i]) - lse;
  return best;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s TOKENS.u32 BOS CTX NWIN NTHREAD BASE.gguf [MODEL.gguf ...]\n", argv[0]);
    return 2;
  }
  const int bos = std::atoi(argv[2]), ctx = std::atoi(argv[3]), threads = std::atoi(argv[5]);
  int nwin = std::atoi(argv[4]);
  FILE *f = std::fopen(argv[1], "rb");
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 2;
  }
  std::vector<uint32_t> tokens;
  uint32_t buf[4096];
  size_t got;
  while ((got = std::fread(buf, 4, 4096, f)) > 0) tokens.insert(tokens.end(), buf, buf + got);
  std::fclose(f);
  const int available = int(tokens.size() / size_t(ctx - 1));
  if (nwin <= 0 || nwin > available) nwin = available;

  // the CPU backends are separate libraries next to libllama (libggml-cpu-<arch>.so): load the best one
  // (BACKEND_DIR: node-llama-cpp's bins folder, set by build.sh; $LLAMA_BACKEND_DIR overrides it)
  const char *dir = std::getenv("LLAMA_BACKEND_DIR");
  ggml_backend_load_all_from_path(dir ? dir : BACKEND_DIR);
  llama_backend_init();
  llama_log_set([](ggml_log_level level, const char *text, void *) { if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr); }, nullptr);

  std::vector<Runner> runners;
  for (int a = 6; a < argc; a++) runners.push_back(open_model(argv[a], ctx, threads));
  const int V = llama_vocab_n_tokens(llama_model_get_vocab(runners[0].model));
  const size_t M = runners.size();
  std::vector<double> nll(M, 0), kl(M, 0);
  std::vector<long long> agree(M, 0);
  std::vector<std::vector<double>> window_nll(M);
  std::vector<double> base_lp(size_t(ctx) * V), lp(V);
  std::vector<int> base_top(ctx);
  llama_batch batch = llama_batch_init(ctx, 0, 1);
  for (int w = 0; w < nwin; w++) {
    for (size_t m = 0; m < M; m++) {
      llama_memory_clear(llama_get_memory(runners[m].ctx), true);
      batch.n_tokens = ctx;
      for (int i = 0; i < ctx; i++) {
        batch.token[i] = i == 0 ? bos : llama_token(tokens[size_t(w) * (ctx - 1) + i - 1]);
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
      }
      if (llama_decode(runners[m].ctx, batch) != 0) {
        std::fprintf(stderr, "llama_decode failed (%s, window %d)\n", argv[6 + m], w);
        return 1;
      }
      double wsum = 0;
      for (int i = 0; i + 1 < ctx; i++) {
        const float *row = llama_get_logits_ith(runners[m].ctx, i);
        const int next = batch.token[i + 1];
        if (m == 0) {
          base_top[i] = log_softmax(row, V, lp);
          std::copy(lp.begin(), lp.end(), base_lp.begin() + size_t(i) * V);
          wsum -= lp[next];
        } else {
          const int top = log_softmax(row, V, lp);
          wsum -= lp[next];
          const double *b = &base_lp[size_t(i) * V];
          double k = 0;
          for (int j = 0; j < V; j++) k += std::exp(b[j]) * (b[j] - lp[j]);
          kl[m] += k > 0 ? k : 0;  // as src/eval/compare.ts klDivergence
          if (top == base_top[i]) agree[m]++;
        }
      }
      nll[m] += wsum;
      window_nll[m].push_back(wsum / (ctx - 1));
    }
    if ((w + 1) % 200 == 0) std::fprintf(stderr, "  llama.cpp %d/%d windows\n", w + 1, nwin);
  }
  llama_batch_free(batch);
  const double n = double(nwin) * (ctx - 1);
  std::printf("{\"ctx\":%d,\"windows\":%d,\"windowsAvailable\":%d,\"vocab\":%d,\"models\":[", ctx, nwin, available, V);
  for (size_t m = 0; m < M; m++) {
    std::printf("%s{\"file\":\"%s\",\"nll\":%.17g,\"kl\":%.17g,\"top1\":%.17g,\"windowNll\":[", m ? "," : "", argv[6 + m], nll[m] / n, m ? kl[m] / n : 0.0, m ? double(agree[m]) / n : 1.0);
    for (size_t w = 0; w < window_nll[m].size(); w++) std::printf("%s%.17g", w ? "," : "", window_nll[m][w]);
    std::printf("]}");
  }
  std::printf("]}\n");
  for (auto &r : runners) {
    llama_free(r.ctx);
    llama_model_free(r.model);
  }
  return 0;
}
