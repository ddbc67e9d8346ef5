// Temperature-calibrated perplexity (pure; tested in test/unit/temperature-fit.test.ts).
//
// A model whose logits are too sharp for a text (e.g. a small model reading text out of its training
// distribution) scores a lower perplexity once flattened, so noise that flattens it can lower its perplexity
// without making it any closer to the reference model. Calibrating removes that: the temperature T that minimizes
// the NLL is fitted on the even windows and the perplexity at that T is scored on the odd windows (held out from
// the fit), for every model alike, and the calibrated Δppl compares those.

/**
 * @param {ArrayLike<number>[]} windowNllAtT per temperature, each window's Σ NLL at that temperature
 * @param {number[]} temps the temperatures, in the same order
 * @param {number} tokensPerWindow scored positions per window
 * @returns {{ T: number, ppl: number, fitWindows: number, scoredWindows: number }}
 */
export function calibratedPerplexity(windowNllAtT, temps, tokensPerWindow) {
  if (windowNllAtT.length !== temps.length || temps.length === 0) throw new Error('calibratedPerplexity: one per-window series per temperature');
  const W = windowNllAtT[0].length;
  if (W < 2) throw new Error('calibratedPerplexity: needs at least 2 windows (even ones fit T, odd ones score)');
  let best = 0;
  let bestFit = Infinity;
  for (let t = 0; t < temps.length; t++) {
    let fit = 0;
    for (let w = 0; w < W; w += 2) fit += windowNllAtT[t][w];
    if (fit < bestFit) {
      bestFit = fit;
      best = t;
    }
  }
  let scored = 0;
  let nOdd = 0;
  for (let w = 1; w < W; w += 2) {
    scored += windowNllAtT[best][w];
    nOdd++;
  }
  return { T: temps[best], ppl: Math.exp(scored / (nOdd * tokensPerWindow)), fitWindows: W - nOdd, scoredWindows: nOdd };
}
