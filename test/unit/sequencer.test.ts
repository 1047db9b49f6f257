import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareSequencers,
  isLaterChange,
  SEQUENCER_WIDTH,
  storedSequencer,
} from '../../functions/core/events/sequencer.js';

describe('compareSequencers: the order of two changes of one key, as S3 documents it', () => {
  it('orders equal-length sequencers as their hexadecimal values', () => {
    expect(compareSequencers('0064D3901D00059242', '0064D3901D00059243')).toBeLessThan(0);
    expect(compareSequencers('0064D3901D0005924A', '0064D3901D00059249')).toBeGreaterThan(0);
    expect(compareSequencers('0064D3901D00059242', '0064D3901D00059242')).toBe(0);
  });

  it('right-pads the shorter one with zeros, so dropped trailing zeros do not change the order', () => {
    // Plain string comparison would put the shorter one first in both cases.
    expect(compareSequencers('0064D3901D0005', '0064D3901D000500')).toBe(0);
    expect(compareSequencers('0064D3901D0006', '0064D3901D000500')).toBeGreaterThan(0);
    expect(compareSequencers('0064D3901D000500', '0064D3901D0006')).toBeLessThan(0);
  });

  it('ignores the case of hexadecimal digits', () => {
    expect(compareSequencers('00ab', '00AB')).toBe(0);
    expect(compareSequencers('00ac', '00AB')).toBeGreaterThan(0);
  });

  it('is a total order: antisymmetric and transitive over random sequencers', () => {
    const sequencer = fc.stringMatching(/^[0-9A-F]{1,20}$/);
    fc.assert(
      fc.property(sequencer, sequencer, sequencer, (a, b, c) => {
        // 0 - sign, not -sign: equal sequencers give 0 both ways, and toBe tells -0 from 0.
        expect(Math.sign(compareSequencers(a, b))).toBe(0 - Math.sign(compareSequencers(b, a)));
        if (compareSequencers(a, b) <= 0 && compareSequencers(b, c) <= 0) {
          expect(compareSequencers(a, c)).toBeLessThanOrEqual(0);
        }
      }),
      // Equal sequencers are rare in random draws; always try them.
      { examples: [['A', 'A', 'A']] },
    );
  });

  it('agrees with the numbers the padded strings stand for', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 72n - 1n }),
        fc.bigInt({ min: 0n, max: 2n ** 72n - 1n }),
        (x, y) => {
          const a = x.toString(16).padStart(18, '0');
          const b = y.toString(16).padStart(18, '0');
          expect(Math.sign(compareSequencers(a, b))).toBe(x === y ? 0 : x < y ? -1 : 1);
        },
      ),
    );
  });
});

describe('isLaterChange: whether a change moves a key forward', () => {
  it('takes any change of a key nothing was applied to yet', () => {
    expect(isLaterChange('00A0', undefined)).toBe(true);
  });

  it('refuses the same change delivered twice and an earlier one delivered late', () => {
    expect(isLaterChange('00A0', '00A0')).toBe(false);
    expect(isLaterChange('0090', '00A0')).toBe(false);
    expect(isLaterChange('00A1', '00A0')).toBe(true);
  });
});

describe('storedSequencer: the form a DynamoDB condition can compare with a plain string <', () => {
  it('orders stored sequencers as compareSequencers orders the originals', () => {
    const sequencer = fc.stringMatching(/^[0-9A-Fa-f]{1,24}$/);
    fc.assert(
      fc.property(sequencer, sequencer, (a, b) => {
        const stored = [storedSequencer(a), storedSequencer(b)];
        const plain = stored[0] === stored[1] ? 0 : (stored[0] ?? '') < (stored[1] ?? '') ? -1 : 1;
        expect(plain).toBe(Math.sign(compareSequencers(a, b)));
      }),
    );
  });

  it('has one width for every sequencer', () => {
    expect(storedSequencer('ab')).toHaveLength(SEQUENCER_WIDTH);
    expect(storedSequencer('ab').startsWith('AB000')).toBe(true);
  });

  it('refuses what is not a sequencer rather than storing something that sorts wrongly', () => {
    expect(() => storedSequencer('')).toThrow(RangeError);
    expect(() => storedSequencer('xyz')).toThrow(/1 to 64 hexadecimal digits; got "xyz"/);
    expect(() => storedSequencer('0'.repeat(SEQUENCER_WIDTH + 1))).toThrow(RangeError);
  });
});
