/**
 * Chiral gauge theories under SU(3)×SU(2)×U(1): a theory is a list of left-handed Weyl fermion
 * multiplets. Hypercharges are stored as Y6 = 6·Y so that every quantity stays an exact integer
 * (the Standard Model needs sixths: the quark doublet has Y = 1/6).
 */

export type SU3 = "1" | "3" | "3b";
export type SU2 = "1" | "2";

export interface Field {
  su3: SU3;
  su2: SU2;
  /** Hypercharge × 6. */
  y6: number;
}

export type Theory = Field[];

/**
 * One generation in left-handed notation: Q, u^c, d^c, L, e^c (hypercharge × 6). Frozen, fields
 * included, because it is shared; copy it before editing.
 */
export const STANDARD_MODEL_GENERATION: Theory = Object.freeze(
  (
    [
      { su3: "3", su2: "2", y6: 1 },
      { su3: "3b", su2: "1", y6: -4 },
      { su3: "3b", su2: "1", y6: 2 },
      { su3: "1", su2: "2", y6: -3 },
      { su3: "1", su2: "1", y6: 6 },
    ] as Field[]
  ).map((f) => Object.freeze(f)),
) as Theory;

export function su3Dim(r: SU3): number {
  return r === "1" ? 1 : 3;
}

export function su2Dim(r: SU2): number {
  return r === "1" ? 1 : 2;
}

/** Number of Weyl components of the multiplet. */
export function fieldDim(f: Field): number {
  return su3Dim(f.su3) * su2Dim(f.su2);
}

/**
 * The conjugate multiplet written as a left-handed field: 3 ↔ 3̄, the SU(2) doublet is
 * pseudo-real so it maps to itself, and the hypercharge flips sign.
 */
export function conjugateField(f: Field): Field {
  const su3: SU3 = f.su3 === "3" ? "3b" : f.su3 === "3b" ? "3" : "1";
  return { su3, su2: f.su2, y6: -f.y6 };
}

/** Position of a representation in the conventional order of fields (see compareFields). */
export const SU3_ORDER: Readonly<Record<SU3, number>> = { "3": 0, "3b": 1, "1": 2 };
export const SU2_ORDER: Readonly<Record<SU2, number>> = { "2": 0, "1": 1 };

/**
 * The conventional order of fields: coloured before colourless, doublets before singlets, then
 * by hypercharge — for the SM generation Q, u^c, d^c, L, e^c.
 */
export function compareFields(a: Field, b: Field): number {
  return SU3_ORDER[a.su3] - SU3_ORDER[b.su3] || SU2_ORDER[a.su2] - SU2_ORDER[b.su2] || a.y6 - b.y6;
}

/** The fields in the conventional order (the order a theory is listed in, not part of its identity). */
export function sortedTheory(t: Theory): Theory {
  return [...t].sort(compareFields);
}

export function sameField(a: Field, b: Field): boolean {
  return a.su3 === b.su3 && a.su2 === b.su2 && a.y6 === b.y6;
}

/** Stable string key, e.g. "3b,1,-4". */
export function fieldKey(f: Field): string {
  return `${f.su3},${f.su2},${formatY6(f.y6)}`;
}

export function formatY6(y6: number): string {
  return y6 > 0 ? `+${y6}` : `${y6}`;
}

export function formatField(f: Field): string {
  return `(${fieldKey(f)})`;
}

/** "(3,2,+1) (3b,1,-4) ..." — hypercharges in units of 1/6. */
export function formatTheory(t: Theory): string {
  return t.map(formatField).join(" ");
}

const FIELD_PATTERN = /^\(\s*(3b|3|1)\s*,\s*(1|2)\s*,\s*([+-]?\d+)\s*\)$/;

/**
 * Inverse of formatTheory. Throws naming the position of the first bad field so that a
 * hand-written theory on the command line gets a precise message.
 */
export function parseTheory(text: string): Theory {
  const parts = text.match(/\([^)]*\)|\S+/g) ?? [];
  return parts.map((part, i) => {
    const m = FIELD_PATTERN.exec(part);
    if (!m) throw new Error(`theory field ${i + 1} "${part}": expected (SU3,SU2,Y6) such as (3b,1,-4)`);
    return { su3: m[1] as SU3, su2: m[2] as SU2, y6: Number(m[3]) };
  });
}
