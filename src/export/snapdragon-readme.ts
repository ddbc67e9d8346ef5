/** The README.md of a Snapdragon bundle: what each part is and the commands that run it. */
import type { SnapdragonManifest } from './snapdragon-bundle.js';

const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

export function snapdragonReadme(m: SnapdragonManifest, name: string): string {
  const est = m.estimates.map((e) => `| ${e.name} | ${e.bandwidthGBs.toFixed(1)} GB/s | ${e.decodeTokPerSec.toFixed(1)} | ${e.fitsUsableMemory ? 'yes' : 'no'} |`).join('\n');
  return `# ${name} for Snapdragon (made by edgeq)

${m.params.toLocaleString('en-US')} parameters, ${m.bitsPerWeight.toFixed(2)} bits per weight in the GGUF, context ${m.ctx}.
Memory at that context: ${mb(m.peakMemoryBytes)} (weights ${mb(m.peakMemoryBytes - m.kvCacheBytes)} + fp16 KV cache ${mb(m.kvCacheBytes)}; compute buffers not counted).

| device | bandwidth | decode tok/s roofline at ctx ${m.ctx} | fits |
|---|---|---|---|
${est}

The roofline is the device's peak DRAM bandwidth ÷ the bytes one decoded token reads (${mb(m.bytesReadPerToken)} of weights + the KV cache): an upper bound; real kernels reach roughly 50-80 % of it. Sources of each bandwidth figure are in manifest.json.

## 1. llama.cpp (CPU, Adreno GPU, Hexagon NPU): \`gguf/model-q4_0.gguf\`

Q4_0 is the type llama.cpp's Snapdragon fast paths take: on the CPU it is repacked at load time into the interleaved ARM layouts (dotprod / i8mm); the Adreno OpenCL backend and the Hexagon backend have optimized Q4_0 matmuls.${m.gguf.lossless ? ' The GGUF holds exactly the integers and scales of the edgeq checkpoint (quantized on the Q4_0 grid), so nothing was requantized.' : ' Some tensors were requantized to Q4_0 (see manifest.json); quantize with `edgeq quantize --target snapdragon` for a lossless bundle.'}

\`\`\`sh
# on the device (Termux or adb shell), with llama.cpp built for Android (arm64-v8a)
./llama-cli -m gguf/model-q4_0.gguf -p "Once upon a time" -n 64 -t 4
./llama-bench -m gguf/model-q4_0.gguf -t 4            # pp512 / tg128
# Adreno GPU: a build with -DGGML_OPENCL=ON, then add -ngl 99
# Hexagon NPU (experimental): a build with -DGGML_HEXAGON=ON
\`\`\`

## 2. Qualcomm QNN (Hexagon NPU): \`qnn/\`

\`qnn/model.onnx\` (+ \`model.onnx.data\`) holds the weights on the 4-bit LPBQ grid (block-wise scales as integer multiples of a per-channel scale, which HTP v73+ runs), and \`qnn/${m.qnn.encodings.split('/').pop()}\` the AIMET/QNN encodings (format 1.0.0): ${m.qnn.lpbqWeights} LPBQ weight entries${m.qnn.perChannelWeights ? ` and ${m.qnn.perChannelWeights} per-channel 4-bit entries` : ''}, ${m.qnn.activationEncodings} 16-bit activation encodings measured on calibration text (W4A16). Re-expressing the edgeq grid on LPBQ changed weights by at most ${(100 * m.qnn.worstRelWeightChange).toFixed(2)} % (relative).

\`\`\`sh
# QNN SDK ≥ 2.28 on the host
qnn-onnx-converter --input_network qnn/model.onnx --quantization_overrides qnn/model.encodings \\
  --act_bitwidth 16 --weights_bitwidth 4 --bias_bitwidth 32 --output_path model.cpp
qnn-model-lib-generator -c model.cpp -b model.bin -o model_libs
qnn-context-binary-generator --backend libQnnHtp.so --model model_libs/x86_64-linux-clang/libmodel.so --binary_file model.serialized
\`\`\`

## Files

- \`manifest.json\`: every GGUF tensor with its type and bytes, bits per weight, memory, the estimates and how they were computed.
`;
}
