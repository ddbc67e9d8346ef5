/** Pareto front (minimise size and error) against a brute-force O(n²) definition, and known cases. */
import { describe, expect, it } from 'vitest';
import { dominates, paretoFront, type XY } from '../../src/report/pareto.js';
import { mulberry32 } from '../helpers/safetensors-bytes.js';

function bruteForce(points: readonly XY[]): boolean[] {
  return points.map((p, i) => !points.some((q, j) => j !== i && dominates(q, p)));
}

describe('paretoFront', () => {
  it('keeps exactly the non-dominated points of a known set', () => {
    const pts = [
      { x: 2, y: 0.5 },
      { x: 4, y: 0.1 },
      { x: 3, y: 0.6 }, // dominated by (2, 0.5)
      { x: 8, y: 0 },
      { x: 8, y: 0.2 }, // dominated by (8, 0)
      { x: 5, y: 0.1 }, // dominated by (4, 0.1): same y, larger x
    ];
    expect(paretoFront(pts)).toEqual([true, true, false, true, false, false]);
  });

  it('keeps duplicates (equal points do not dominate each other) and handles empty / single input', () => {
    expect(paretoFront([])).toEqual([]);
    expect(paretoFront([{ x: 1, y: 1 }])).toEqual([true]);
    expect(paretoFront([{ x: 1, y: 1 }, { x: 1, y: 1 }, { x: 1, y: 2 }])).toEqual([true, true, false]);
  });

  it('equals the brute-force definition on 500 random sets with many ties', () => {
    const rand = mulberry32(7);
    for (let trial = 0; trial < 500; trial++) {
      const n = 1 + (rand() % 12);
      const grid = 1 + (rand() % 6); // small integer grid → many equal x, equal y and duplicate points
      const pts = Array.from({ length: n }, () => ({ x: rand() % grid, y: (rand() % grid) - 2 }));
      expect(paretoFront(pts), JSON.stringify(pts)).toEqual(bruteForce(pts));
    }
  });
});
