/** The quantization benches' --configs parser (scripts/lib/bench-common.mjs): bits:group[:sym], anything else refused. */
import { describe, expect, it } from 'vitest';
import { parseGridConfigs } from '../../scripts/lib/bench-common.mjs';

describe('parseGridConfigs', () => {
  it('reads bits:group and bits:group:sym into names, labels and quantize flags', () => {
    expect(parseGridConfigs('4:128,4:32:sym')).toEqual([
      { bits: 4, group: 128, sym: false, name: 'w4g128', label: 'w4 g128', args: ['--bits', '4', '-g', '128'] },
      { bits: 4, group: 32, sym: true, name: 'w4g32s', label: 'w4 g32 sym', args: ['--bits', '4', '-g', '32', '--sym'] },
    ]);
  });

  it.each(['4', '4:x', '4:32:asym', '4:32:sym:1'])('refuses %s', (spec) => {
    expect(() => parseGridConfigs(spec)).toThrow(/bits:group\[:sym\]/);
  });
});
