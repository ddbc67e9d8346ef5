/** max |out − ref| over the RMS of ref: a function-unchanged check that is scale-free and ignores near-zero entries' relative noise. */
export function maxErrorOverRms(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`length ${out.length} vs ${ref.length}`);
  let ss = 0;
  for (let i = 0; i < ref.length; i++) ss += ref[i]! * ref[i]!;
  const rms = Math.sqrt(ss / ref.length);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(out[i]! - ref[i]!));
  return worst / rms;
}
