// Verdicts of `npm run bench:ladder` (pure; unit-tested in test/unit/bench-ladder-verdict.test.ts).
//
// ladderVerdicts: for each ladder row, the uniform rows whose linear bits per weight is no larger than the
// ladder's (a tolerance of 1e-9 for rounding) are its competitors; the ladder passes on Δppl when its Δppl is
// at or below the smallest competitor Δppl, and on KL likewise (each against its own best competitor). No
// competitor: pass = null (nothing of no larger size to beat). Also whether the ladder met its budget.
//
// svdVerdicts: per ratio, variant Δppl / plain Δppl for each variant ≠ plain (whitenings, rank allocations;
// "plain" is plain SVD with the same rank ratio for every linear); target ≤ 0.5, judged only for whitened
// variants (a "plain+…" variant, e.g. plain SVD with ranks by sensitivity, gets its ratios and pass = null);
// also the KL ratio when both rows have a mean KL. A plain Δppl ≤ 0 makes the ratio meaningless (null).

const EPS = 1e-9;

/**
 * @typedef {{ id: string, method: string, bpw: number, deltaPpl: number, meanKl: number, budget?: number }} Row
 * @param {Row[]} ladder
 * @param {Row[]} uniform
 */
export function ladderVerdicts(ladder, uniform) {
  return ladder.map((l) => {
    const comp = uniform.filter((u) => u.bpw <= l.bpw + EPS);
    const bestBy = (key) => comp.reduce((best, u) => (best === null || u[key] < best[key] ? u : best), null);
    const bp = bestBy('deltaPpl');
    const bk = bestBy('meanKl');
    return {
      id: l.id,
      budget: l.budget ?? null,
      bpw: l.bpw,
      withinBudget: l.budget === undefined ? null : l.bpw <= l.budget + EPS,
      deltaPpl: l.deltaPpl,
      meanKl: l.meanKl,
      bestUniformByPpl: bp ? { id: bp.id, bpw: bp.bpw, deltaPpl: bp.deltaPpl } : null,
      bestUniformByKl: bk ? { id: bk.id, bpw: bk.bpw, meanKl: bk.meanKl } : null,
      passPpl: bp ? l.deltaPpl <= bp.deltaPpl : null,
      passKl: bk ? l.meanKl <= bk.meanKl : null,
    };
  });
}

/**
 * @param {{ ratio: number, whitening: string, deltaPpl: number, meanKl?: number }[]} rows
 * @param {number} [target]
 */
export function svdVerdicts(rows, target = 0.5) {
  const out = [];
  const ratios = [...new Set(rows.map((r) => r.ratio))].sort((a, b) => b - a);
  for (const ratio of ratios) {
    const plain = rows.find((r) => r.ratio === ratio && r.whitening === 'plain');
    for (const w of rows.filter((r) => r.ratio === ratio && r.whitening !== 'plain')) {
      const ratioVsPlain = plain && plain.deltaPpl > 0 ? w.deltaPpl / plain.deltaPpl : null;
      const klVsPlain = plain && plain.meanKl > 0 && w.meanKl !== undefined ? w.meanKl / plain.meanKl : null;
      const whitened = !w.whitening.startsWith('plain');
      out.push({ ratio, reduction: Math.round((1 - ratio) * 1000) / 10, whitening: w.whitening, whitened, deltaPpl: w.deltaPpl, plainDeltaPpl: plain?.deltaPpl ?? null, ratioVsPlain, klVsPlain, target, pass: ratioVsPlain === null || !whitened ? null : ratioVsPlain <= target });
    }
  }
  return out;
}

/** PASS / FAIL / n/a for a boolean-or-null verdict. */
export const verdictWord = (v) => (v === null || v === undefined ? 'n/a' : v ? 'PASS' : 'FAIL');

/**
 * Rows of one method × configuration quantized at several calibration seeds (same `key`) → one row per key with
 * the mean Δppl and mean KL over its seeds, their values and sample standard deviations (null for one seed).
 * A deterministic row (plain RTN, plain SVD: seed null) counts once. bpw is the largest over the seeds (a
 * ladder's plan, and so its size, may differ by seed); every other field comes from the group's first row.
 * The across-seed spread is what a single checkpoint's window bootstrap cannot see: another calibration draw
 * gives another quantization.
 * @param {(Row & { key: string, seed: number | null })[]} rows
 */
export function meanOverSeeds(rows) {
  const groups = new Map();
  for (const r of rows) {
    if (!groups.has(r.key)) groups.set(r.key, []);
    groups.get(r.key).push(r);
  }
  const stat = (v) => {
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : null;
    return { mean, sd };
  };
  return [...groups.values()].map((g) => {
    const dpValues = g.map((r) => r.deltaPpl);
    const dp = stat(dpValues);
    const kl = stat(g.map((r) => r.meanKl));
    return {
      ...g[0],
      id: g[0].key,
      seeds: g.map((r) => r.seed),
      deltaPplValues: dpValues,
      deltaPpl: dp.mean,
      deltaPplSd: dp.sd,
      meanKl: kl.mean,
      meanKlSd: kl.sd,
      bpw: Math.max(...g.map((r) => r.bpw)),
    };
  });
}
