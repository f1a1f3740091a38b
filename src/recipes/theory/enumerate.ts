import { anomalyCoefficients } from "./anomalies.ts";
import { isValidTheory, theoryClass } from "./canonical.ts";
import type { Field, SU2, SU3, Theory } from "./fields.ts";
import type { GrammarOptions } from "./grammar.ts";

/**
 * Exact search of the valid theories (anomaly-free and non-trivial) a grammar can write, up to
 * field order and relabelling (canonical.ts). Meet in the middle: a theory of n fields is a
 * sorted list of field types, split into its first ⌈n/2⌉ and its last ⌊n/2⌋; the anomaly
 * coefficients add, so a left half is completed exactly by the right halves whose coefficients
 * are its negatives and whose first type is not below the left half's last. Every multiset is
 * met once, so the count is exact, not sampled.
 */

export interface ValidTheorySpace {
  /** Field lists (as multisets) that are anomaly-free, Witten's condition included. */
  anomalyFreeMultisets: number;
  /** Of those, the non-trivial ones. */
  validMultisets: number;
  /** Valid theories up to relabelling: the figure discovery is measured against. */
  classes: number;
  /** Valid classes by number of fields (index = fields). */
  classesByFields: number[];
  /** Every valid class (theoryClass strings). */
  classKeys: Set<string>;
}

const SU3_REPS: readonly SU3[] = ["3", "3b", "1"];
const SU2_REPS: readonly SU2[] = ["2", "1"];
/** Above this many half-theories the search would take minutes and gigabytes: refuse instead. */
const MAX_HALVES = 4_000_000;

function fieldTypes(lo: number, hi: number): Field[] {
  const out: Field[] = [];
  for (const su3 of SU3_REPS)
    for (const su2 of SU2_REPS) for (let y6 = lo; y6 <= hi; y6++) out.push({ su3, su2, y6 });
  return out;
}

/** Multisets of size k from n types: C(n + k − 1, k). */
function multisets(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n + i - 1)) / i;
  return Math.round(c);
}

export function enumerateValidTheories(opts: GrammarOptions = {}): ValidTheorySpace {
  const minFields = opts.minFields ?? 1;
  const maxFields = opts.maxFields ?? 16;
  const [lo, hi] = opts.y6Range ?? [-12, 12];
  const types = fieldTypes(lo, hi);
  const T = types.length;
  const half = Math.ceil(maxFields / 2);
  let halves = 0;
  for (let k = 0; k <= half; k++) halves += multisets(T, k);
  if (halves > MAX_HALVES || T >= 128) {
    throw new Error(
      `theory enumeration: ${maxFields} fields over ${T} field types needs ${halves} half-theories, more than ${MAX_HALVES}; the exact search covers small grammars only`,
    );
  }
  // The coefficients add over fields, so a mixed-radix code of the five perturbative ones adds
  // too; each radix covers the sum over a whole theory, so a code is zero only when all five are.
  const perField = types.map((f) => anomalyCoefficients([f]));
  let stride = 1;
  const code = types.map(() => 0);
  for (const name of ["gravU1", "u1Cubed", "su2SqU1", "su3SqU1", "su3Cubed"] as const) {
    const most = Math.max(...perField.map((c) => Math.abs(c[name])));
    perField.forEach((c, t) => {
      code[t]! += c[name] * stride;
    });
    stride *= 2 * maxFields * most + 1;
  }
  if (stride > Number.MAX_SAFE_INTEGER) {
    throw new Error("theory enumeration: hypercharge range too wide for exact coefficient codes");
  }
  const parity = perField.map((c) => c.witten);
  // 7 bits per field type (T < 128), the first type in the highest bits.
  const BITS = 7;

  /** Calls `visit` with every sorted list of k types (packed), its code and its doublet parity. */
  const each = (k: number, visit: (packed: number, code: number, parity: number) => void) => {
    const rec = (left: number, from: number, packed: number, c: number, p: number) => {
      if (left === 0) return visit(packed, c, p);
      for (let t = from; t < T; t++) rec(left - 1, t, packed * 2 ** BITS + t, c + code[t]!, p ^ parity[t]!);
    };
    rec(k, 0, 0, 0, 0);
  };
  const unpack = (packed: number, k: number): number[] => {
    const ids: number[] = [];
    for (let i = 0; i < k; i++) {
      ids.unshift(packed % 2 ** BITS);
      packed = Math.floor(packed / 2 ** BITS);
    }
    return ids;
  };

  // Right halves by size, chained by code and parity: `head` gives a chain's first entry, `next`
  // the following one (−1 ends it). Flat arrays, because there are millions of halves.
  const rights = Array.from({ length: Math.floor(maxFields / 2) + 1 }, (_, b) => {
    const size = multisets(T, b);
    const packedIds = new Float64Array(size);
    const next = new Int32Array(size);
    const head = new Map<number, number>();
    let i = 0;
    each(b, (packed, c, p) => {
      const k = 2 * c + p;
      packedIds[i] = packed;
      next[i] = head.get(k) ?? -1;
      head.set(k, i++);
    });
    return { packedIds, next, head };
  });

  let anomalyFreeMultisets = 0;
  let validMultisets = 0;
  const classKeys = new Set<string>();
  const classesByFields = Array.from({ length: maxFields + 1 }, () => 0);
  for (let n = minFields; n <= maxFields; n++) {
    const a = Math.ceil(n / 2);
    const b = n - a;
    const right = rights[b]!;
    const firstDivisor = 2 ** (BITS * Math.max(0, b - 1));
    each(a, (leftPacked, c, p) => {
      const last = leftPacked % 2 ** BITS;
      for (let i = right.head.get(-2 * c + p) ?? -1; i >= 0; i = right.next[i]!) {
        const r = right.packedIds[i]!;
        // A chain runs from the last generated half back, i.e. by first type descending.
        if (b > 0 && Math.floor(r / firstDivisor) < last) break;
        anomalyFreeMultisets++;
        const theory: Theory = [...unpack(leftPacked, a), ...unpack(r, b)].map((t) => types[t]!);
        if (!isValidTheory(theory)) continue;
        validMultisets++;
        const cls = theoryClass(theory);
        if (!classKeys.has(cls)) {
          classKeys.add(cls);
          classesByFields[n]!++;
        }
      }
    });
  }
  return { anomalyFreeMultisets, validMultisets, classes: classKeys.size, classesByFields, classKeys };
}
