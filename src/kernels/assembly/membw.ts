// Memory read bandwidth probe: streams `bytes` from `ptr` `reps` times with 128-bit loads into four
// independent f32x4 accumulators and returns the sum (so the loads cannot be optimised away). Used by
// src/devices/bandwidth.ts to measure this machine's DRAM read bandwidth for roofline estimates.

export function readSum(ptr: usize, bytes: usize, reps: i32): f64 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const end = ptr + (bytes & ~(<usize>63));
  for (let r = 0; r < reps; r++) {
    for (let p = ptr; p < end; p += 64) {
      a0 = f32x4.add(a0, v128.load(p));
      a1 = f32x4.add(a1, v128.load(p, 16));
      a2 = f32x4.add(a2, v128.load(p, 32));
      a3 = f32x4.add(a3, v128.load(p, 48));
    }
  }
  const s = f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3));
  return <f64>f32x4.extract_lane(s, 0) + <f64>f32x4.extract_lane(s, 1) + <f64>f32x4.extract_lane(s, 2) + <f64>f32x4.extract_lane(s, 3);
}
