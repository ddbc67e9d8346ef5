#!/usr/bin/python3
"""edgeq's GPTQ vs the original GPTQ implementation (IST-DASLab/gptq, gptq.py + quant.py), linear by linear.

Input: a directory written by edgeq with EDGEQ_DUMP_GPTQ=dir (src/pipeline/linear-quantizer.ts,
dumpGptqLinear): per linear `<name>.json` and raw little-endian W.f32 (n, k) as edgeq's solver received it,
H.f64 (k, k) = 2XᵀX/N exactly as edgeq's true-sequential pipeline accumulated it (undamped), and edgeq's
result Wq.f32 / codes.u8 / scales.f32 / zeros.u8.

For each linear this runs the UPSTREAM solver, imported at run time from a checkout given by --gptq-repo
(nothing of it is copied here): GPTQ(nn.Linear with weight W).fasterquant(blocksize=128, percdamp=0.01,
groupsize=g, actorder=False, static_groups=False) with Quantizer.configure(bits, perchannel=True, sym=False,
mse=False), after setting gptq.H and gptq.nsamples as add_batch would have left them. Units: upstream's
add_batch counts nsamples in calibration SEQUENCES (inp.shape[0] of a (1, T, k) batch; llama.py feeds one
sequence per call), H_up = 2/nseq·Σ_tokens x xᵀ, while edgeq's H = 2/N_tokens·Σ x xᵀ (hessian.ts); so
H_up = T·H_edgeq and nsamples = N_tokens/T, with T = --calib-seqlen (default 256). The damping is relative
(percdamp·mean(diag H)), so the global factor T does not change the problem solved, and for T a power of two
the scaling is exact in floating point as well; upstream's printed loss is divided by T for the table.
Upstream works in float32 (H, its Cholesky inverse, W), edgeq in float64 for H/Hinv and float32 for W.

Two upstream runs per linear:
  ref     upstream as is (float32 scales from find_params)
  ref16   upstream with find_params' scale rounded UP to the next fp16 value and the zero point re-derived
          from it, the one deliberate grid deviation edgeq documents (src/qtypes/int-grid.ts: scales are
          stored as fp16 and rounded up before codes are computed). Everything else is upstream's code.
Reported per linear: share of integer codes identical to edgeq's, max |Wq_ref − Wq_edgeq| in units of
edgeq's group scale, the first column where a code differs, and the Hessian-weighted error
tr(ΔW H ΔWᵀ) (H undamped, float64) of edgeq, ref, ref16 and RTN (upstream's Quantizer per group, no error
feedback), each also relative to RTN.

  /usr/bin/python3 scripts/gptq-reference/compare.py DUMP_DIR --gptq-repo /path/to/gptq-checkout \
      [--json out.json] [--write-ref]      (--write-ref: also writes <name>.Wq_ref.f32 into DUMP_DIR)
Exit status 2 when torch or the upstream checkout is missing.
"""
import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import time
import types


def die(msg):
    print(f'compare.py: {msg}', file=sys.stderr)
    sys.exit(2)


def load_upstream(repo):
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        die(f'needs PyTorch and NumPy for this interpreter ({e}); on Debian: apt-get install python3-torch, run with /usr/bin/python3')
    for f in ('gptq.py', 'quant.py'):
        if not os.path.isfile(os.path.join(repo, f)):
            die(f'{repo} has no {f}: pass --gptq-repo a checkout of https://github.com/IST-DASLab/gptq')
    # gptq.py imports transformers only for transformers.Conv1D (isinstance checks on the layer): when it is not
    # installed, a stand-in module whose Conv1D no nn.Linear is an instance of.
    try:
        import transformers  # noqa: F401
    except ImportError:
        stub = types.ModuleType('transformers')
        stub.Conv1D = type('Conv1D', (), {})
        sys.modules['transformers'] = stub
    # fasterquant calls torch.cuda.synchronize() unconditionally; on a CPU-only torch that raises
    if not torch.cuda.is_available():
        torch.cuda.synchronize = lambda *a, **k: None
    sys.path.insert(0, os.path.abspath(repo))
    with contextlib.redirect_stdout(io.StringIO()):  # quant.py prints 'CUDA extension not installed.'
        import gptq as upstream_gptq
        import quant as upstream_quant
    return torch, upstream_gptq.GPTQ, upstream_quant.Quantizer, upstream_quant.quantize


def fp16_ceil(raw):
    """Smallest fp16 value ≥ raw (float64 array), clamped to [2^-24, 65504] as edgeq's paramsFromRange."""
    import numpy as np
    h = raw.astype(np.float16)
    low = h.astype(np.float64) < raw
    h[low] = np.nextafter(h[low], np.float16(np.inf))
    out = h.astype(np.float64)
    out[raw <= 2.0 ** -24] = 2.0 ** -24
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('dump_dir')
    ap.add_argument('--gptq-repo', required=False, help='checkout of github.com/IST-DASLab/gptq (gptq.py, quant.py)')
    ap.add_argument('--json', help='write the results here as JSON')
    ap.add_argument('--write-ref', action='store_true', help='write <name>.Wq_ref.f32 (upstream as is) into the dump dir')
    ap.add_argument('--only', help='regex: linears to compare')
    ap.add_argument('--calib-seqlen', type=int, default=256, help='tokens per calibration sequence (upstream counts nsamples in sequences)')
    a = ap.parse_args()
    if not a.gptq_repo:
        die('--gptq-repo DIR is required: a checkout of https://github.com/IST-DASLab/gptq (see scripts/bench-gptq-reference.mjs)')
    torch, GPTQ, Quantizer, quantize = load_upstream(a.gptq_repo)
    import numpy as np
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))

    class Recording(Quantizer):
        """Upstream's Quantizer; remembers the (scale, zero) of every find_params call."""
        fp16 = False

        def find_params(self, x, weight=False):
            super().find_params(x, weight=weight)
            if self.fp16:  # edgeq's grid: scale = fp16Ceil((xmax − xmin)/maxq) in f64, zero = round(−xmin/scale)
                xd = x.double()
                lo = torch.clamp(xd.min(1)[0], max=0)
                hi = torch.clamp(xd.max(1)[0], min=0)
                both = (lo == 0) & (hi == 0)
                lo[both], hi[both] = -1.0, 1.0
                s = torch.from_numpy(fp16_ceil(((hi - lo) / float(self.maxq)).numpy()))
                z = torch.clamp(torch.round(-lo / s), 0, float(self.maxq))
                self.scale = s.float().reshape(self.scale.shape)
                self.zero = z.float().reshape(self.zero.shape)
            self.log.append((self.scale.clone().flatten(), self.zero.clone().flatten()))

    def run_upstream(W, H, meta, fp16):
        n, k, g = meta['n'], meta['k'], meta['groupSize']
        layer = torch.nn.Linear(k, n, bias=False)
        layer.weight.data = torch.from_numpy(W.copy())
        gq = GPTQ(layer)
        gq.quantizer = Recording()
        gq.quantizer.configure(meta['bits'], perchannel=True, sym=meta['sym'], mse=False)
        gq.quantizer.fp16 = fp16
        gq.quantizer.log = []
        T = a.calib_seqlen
        gq.H = torch.from_numpy(H * T).float()  # upstream's units: 2/nseq · Σ x xᵀ (see the module docstring)
        gq.nsamples = meta['nsamples'] // T
        out = io.StringIO()
        t0 = time.time()
        with contextlib.redirect_stdout(out):
            gq.fasterquant(blocksize=128, percdamp=meta['damp'], groupsize=g if g < k else -1, actorder=False, static_groups=False)
        sec = time.time() - t0
        m = re.search(r'error ([-0-9.e+naif]+)', out.getvalue())
        Q = layer.weight.data.numpy().astype(np.float32)
        groups = k // g
        log = gq.quantizer.log[-groups:]  # the first call is fasterquant's whole-W find_params (quantizer not ready)
        scale = torch.stack([s for s, _ in log], 1).numpy().astype(np.float64)  # (n, groups)
        zero = torch.stack([z for _, z in log], 1).numpy().astype(np.float64)
        colg = np.arange(k) // g
        codes = np.clip(np.round(Q.astype(np.float64) / scale[:, colg] + zero[:, colg]), 0, 2 ** meta['bits'] - 1).astype(np.int64)
        return Q, codes, scale, float(m.group(1)) / T if m else float('nan'), sec

    def rtn(W, meta):
        g = meta['groupSize']
        q = Quantizer()
        q.configure(meta['bits'], perchannel=True, sym=meta['sym'], mse=False)
        Wt = torch.from_numpy(W)
        out = torch.empty_like(Wt)
        for c in range(0, meta['k'], g):
            q.find_params(Wt[:, c:c + g], weight=True)
            out[:, c:c + g] = quantize(Wt[:, c:c + g], q.scale, q.zero, q.maxq)
        return out.numpy()

    def herr(W, Q, H):
        d = (W.astype(np.float64) - Q.astype(np.float64))
        return float(np.einsum('ij,jk,ik->', d, H, d))

    names = sorted((f[:-5] for f in os.listdir(a.dump_dir) if f.endswith('.json')), key=lambda s: [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', s)])
    if a.only:
        names = [s for s in names if re.search(a.only, s)]
    if not names:
        die(f'no <name>.json dumps in {a.dump_dir} (run edgeq quantize --method gptq with EDGEQ_DUMP_GPTQ={a.dump_dir})')
    rows = []
    for name in names:
        meta = json.load(open(os.path.join(a.dump_dir, name + '.json')))
        n, k, g = meta['n'], meta['k'], meta['groupSize']
        rd = lambda ext, dt: np.fromfile(os.path.join(a.dump_dir, f'{name}.{ext}'), dtype=dt)  # noqa: E731
        W = rd('W.f32', '<f4').reshape(n, k)
        H = rd('H.f64', '<f8').reshape(k, k)
        Wq = rd('Wq.f32', '<f4').reshape(n, k)
        codes = rd('codes.u8', 'u1').reshape(n, k).astype(np.int64)
        sc = rd('scales.f32', '<f4').reshape(n, k // g).astype(np.float64)
        zr = rd('zeros.u8', 'u1').reshape(n, k // g).astype(np.float64)
        if meta.get('gIdx') or meta.get('actOrder'):
            die(f'{name}: act-order dumps are not supported (compare with act_order off)')
        colg = np.arange(k) // g
        selfcheck = float(np.max(np.abs(sc[:, colg] * (codes - zr[:, colg]) - Wq) / sc[:, colg]))
        e_rtn = herr(W, rtn(W, meta), H)
        row = {'name': name, 'n': n, 'k': k, 'nsamples': meta['nsamples'], 'edgeqLoss': meta.get('loss'), 'dumpSelfCheck': selfcheck,
               'err': {'rtn': e_rtn, 'edgeq': herr(W, Wq, H)}}
        for tag, fp16 in (('ref', False), ('ref16', True)):
            Q, qc, qscale, uloss, sec = run_upstream(W, H, meta, fp16)
            same = qc == codes
            cols = np.nonzero(~same.all(0))[0]
            row[tag] = {
                'codesIdentical': float(same.mean()),
                'codesDiffer': int((~same).sum()),
                'firstDiffColumn': int(cols[0]) if len(cols) else None,
                'maxDiffInScales': float(np.max(np.abs(Q.astype(np.float64) - Wq) / sc[:, colg])),
                'upstreamLoss': uloss,
                'seconds': sec,
            }
            row['err'][tag] = herr(W, Q, H)
            if tag == 'ref' and a.write_ref:
                Q.astype('<f4').tofile(os.path.join(a.dump_dir, f'{name}.Wq_ref.f32'))
        rows.append(row)
        r = row
        print(f"{name:42s} codes= {100 * r['ref']['codesIdentical']:7.3f}% (fp16-scale {100 * r['ref16']['codesIdentical']:7.3f}%)"
              f"  maxΔ/scale {r['ref']['maxDiffInScales']:.3g}  err/RTN edgeq {r['err']['edgeq'] / e_rtn:.4f} ref {r['err']['ref'] / e_rtn:.4f}",
              file=sys.stderr, flush=True)
    tot = lambda key: sum(r['err'][key] for r in rows)  # noqa: E731
    allc = sum(r['n'] * r['k'] for r in rows)
    summary = {
        'linears': len(rows),
        'weights': allc,
        'codesIdentical': {t: sum(r[t]['codesIdentical'] * r['n'] * r['k'] for r in rows) / allc for t in ('ref', 'ref16')},
        'maxDiffInScales': {t: max(r[t]['maxDiffInScales'] for r in rows) for t in ('ref', 'ref16')},
        'errSum': {t: tot(t) for t in ('rtn', 'edgeq', 'ref', 'ref16')},
        'errVsRtnMean': {t: sum(r['err'][t] / r['err']['rtn'] for r in rows) / len(rows) for t in ('edgeq', 'ref', 'ref16')},
        'edgeqOverRef': {'sum': tot('edgeq') / tot('ref'), 'min': min(r['err']['edgeq'] / r['err']['ref'] for r in rows), 'max': max(r['err']['edgeq'] / r['err']['ref'] for r in rows)},
        'maxDumpSelfCheck': max(r['dumpSelfCheck'] for r in rows),
    }
    m0 = json.load(open(os.path.join(a.dump_dir, names[0] + '.json')))
    res = {'settings': {'bits': m0['bits'], 'groupsize': m0['groupSize'], 'blocksize': 128, 'percdamp': m0['damp'], 'actorder': False, 'static_groups': False,
                        'sym': m0['sym'], 'mse': False, 'calibSeqlen': a.calib_seqlen},
           'torch': torch.__version__, 'rows': rows, 'summary': summary}
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=1)
    else:
        json.dump(res, sys.stdout)
    print(f"all: codes identical {100 * summary['codesIdentical']['ref']:.3f}% (fp16-scale upstream {100 * summary['codesIdentical']['ref16']:.3f}%), "
          f"Σerr edgeq/ref {summary['edgeqOverRef']['sum']:.5f}", file=sys.stderr)


if __name__ == '__main__':
    main()
