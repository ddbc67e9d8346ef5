/** config.json → LlamaConfig: defaults, per-architecture biases, validation errors that name the field. */
import { describe, expect, it } from 'vitest';
import { expectedTensors } from '../../src/arch/llama-tensors.js';
import { parseModelConfig, supportedModelTypes } from '../../src/arch/registry.js';
import { EdgeqError, FormatError, UnsupportedError } from '../../src/core/errors.js';
import { ropeInvFreq } from '../../src/infer/rope.js';

const base = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  vocab_size: 512,
};

describe('parseModelConfig', () => {
  it('fills Llama defaults', () => {
    const c = parseModelConfig(base);
    expect(c.headDim).toBe(8);
    expect(c.ropeTheta).toBe(10000);
    expect(c.ropeScaling).toEqual({ type: 'none' });
    expect(c.tieWordEmbeddings).toBe(false);
    expect(c.bias).toEqual({ qkv: false, o: false, mlp: false });
  });

  it('knows qwen2 has q/k/v biases and llama attention_bias covers o_proj', () => {
    expect(parseModelConfig({ ...base, model_type: 'qwen2' }).bias).toEqual({ qkv: true, o: false, mlp: false });
    expect(parseModelConfig({ ...base, attention_bias: true, mlp_bias: true }).bias).toEqual({ qkv: true, o: true, mlp: true });
    const names = expectedTensors(parseModelConfig({ ...base, model_type: 'qwen2' })).map((t) => t.name);
    expect(names).toContain('model.layers.1.self_attn.k_proj.bias');
    expect(names).not.toContain('model.layers.1.self_attn.o_proj.bias');
  });

  it('honours a head_dim override and GQA shapes', () => {
    const c = parseModelConfig({ ...base, hidden_size: 48, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16 });
    const q = expectedTensors(c).find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight');
    const k = expectedTensors(c).find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight');
    expect(q?.shape).toEqual([64, 48]);
    expect(k?.shape).toEqual([32, 48]);
  });

  it('rejects unsupported architectures, listing what is supported', () => {
    const err = (() => {
      try {
        parseModelConfig({ ...base, model_type: 'gpt2' });
      } catch (e) {
        return e;
      }
    })() as EdgeqError;
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.message).toContain('gpt2');
    for (const t of supportedModelTypes()) expect(err.hint).toContain(t);
  });

  it.each([
    [{ hidden_size: -1 }, 'hidden_size'],
    [{ num_key_value_heads: 3 }, 'num_key_value_heads'],
    [{ hidden_size: 65, num_attention_heads: 8 }, 'hidden_size'],
    [{ rms_norm_eps: 'x' }, 'rms_norm_eps'],
    [{ head_dim: 7 }, 'head_dim'],
  ])('names the bad field %j', (patch, field) => {
    expect(() => parseModelConfig({ ...base, ...patch })).toThrow(FormatError);
    expect(() => parseModelConfig({ ...base, ...patch })).toThrow(field);
  });

  it('rejects unknown rope scaling and non-SwiGLU activations', () => {
    expect(() => parseModelConfig({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(UnsupportedError);
    expect(() => parseModelConfig({ ...base, hidden_act: 'gelu' })).toThrow(UnsupportedError);
  });
});

describe('ropeInvFreq', () => {
  it('matches 1/theta^(2i/d) and applies llama3 scaling band by band', () => {
    const plain = ropeInvFreq(64, 500000, { type: 'none' });
    for (let i = 0; i < 32; i++) expect(plain[i]).toBeCloseTo(1 / 500000 ** ((2 * i) / 64), 15);
    const s = { type: 'llama3' as const, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    const scaled = ropeInvFreq(64, 500000, s);
    for (let i = 0; i < 32; i++) {
      const wavelen = (2 * Math.PI) / plain[i];
      if (wavelen < 8192 / 4) expect(scaled[i]).toBe(plain[i]); // high frequencies untouched
      else if (wavelen > 8192) expect(scaled[i]).toBeCloseTo(plain[i] / 32, 18); // low frequencies divided by factor
      else expect(scaled[i]).toBeLessThan(plain[i]); // smooth band in between
    }
  });
});
