/** The Pareto front of (size, error) points where smaller is better on both axes (pure). */

export interface XY {
  x: number;
  y: number;
}

/** q dominates p: no worse on both axes and strictly better on one. */
export function dominates(q: XY, p: XY): boolean {
  return q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y);
}

/**
 * For each point, whether no other point dominates it (minimising x and y). Equal points do not
 * dominate each other, so duplicates on the front are all kept. O(n log n): sweep in x order, keeping
 * the smallest y seen at strictly smaller x and the smallest y within the current equal-x group.
 */
export function paretoFront(points: readonly XY[]): boolean[] {
  const order = points.map((_, i) => i).sort((a, b) => points[a].x - points[b].x || points[a].y - points[b].y);
  const onFront = new Array<boolean>(points.length).fill(false);
  let bestBefore = Infinity; // min y over points with x < current group's x
  let i = 0;
  while (i < order.length) {
    const x = points[order[i]].x;
    let j = i;
    while (j < order.length && points[order[j]].x === x) j++;
    const groupMin = points[order[i]].y; // sorted by y within the group
    for (let k = i; k < j; k++) {
      const y = points[order[k]].y;
      onFront[order[k]] = !(bestBefore <= y) && !(groupMin < y);
    }
    bestBefore = Math.min(bestBefore, groupMin);
    i = j;
  }
  return onFront;
}
