import { conjugateField, type Field, fieldKey, STANDARD_MODEL_GENERATION, type Theory } from "./fields.ts";

/**
 * Properties of the particle spectrum beyond anomalies: which fields can pair up into massive
 * vector-like (Dirac or Majorana) states, which are Standard-Model-like, and which colour
 * singlets would carry a fractional electric charge.
 */

function isSelfConjugate(f: Field): boolean {
  return f.su3 === "1" && f.y6 === 0;
}

/**
 * The fields left over once every field has been paired with its conjugate (r̄3, r2, −Y), i.e.
 * the part of the spectrum that cannot get a gauge-invariant mass. Gauge-neutral real fields
 * (1,1,0) take a Majorana mass on their own; the pseudo-real (1,2,0) needs a partner copy
 * because the mass term of a single doublet vanishes by antisymmetry.
 */
export function chiralRemainder(t: Theory): Theory {
  const counts = new Map<string, { field: Field; n: number }>();
  for (const f of t) {
    const key = fieldKey(f);
    const entry = counts.get(key);
    if (entry) entry.n++;
    else counts.set(key, { field: f, n: 1 });
  }
  const left = new Map<string, number>();
  for (const [key, { field, n }] of counts) {
    if (isSelfConjugate(field)) {
      left.set(key, field.su2 === "1" ? 0 : n % 2);
      continue;
    }
    const partner = counts.get(fieldKey(conjugateField(field)))?.n ?? 0;
    left.set(key, Math.max(0, n - partner));
  }
  // Keep the theory's own order so that callers can report which fields are unpaired.
  const out: Theory = [];
  for (const f of t) {
    const key = fieldKey(f);
    const n = left.get(key)!;
    if (n > 0) {
      out.push(f);
      left.set(key, n - 1);
    }
  }
  return out;
}

/** Every field is paired with its conjugate (the empty theory counts as vector-like). */
export function isVectorLike(t: Theory): boolean {
  return chiralRemainder(t).length === 0;
}

export function isGaugeSinglet(f: Field): boolean {
  return f.su3 === "1" && f.su2 === "1" && f.y6 === 0;
}

export function isStandardModelField(f: Field): boolean {
  return STANDARD_MODEL_GENERATION.some((g) => g.su3 === f.su3 && g.su2 === f.su2 && g.y6 === f.y6);
}

function mod6(x: number): number {
  return ((x % 6) + 6) % 6;
}

/**
 * A colour singlet whose components do not all have integer electric charge Q = T3 + Y.
 * In sixths: a singlet has 6Q = Y6, a doublet has 6Q = Y6 ± 3, and Q is an integer when 6Q is a
 * multiple of 6. Such particles would be stable fractionally charged relics, which are not seen.
 * Coloured fields are confined, so their fractional charges are not penalised.
 */
export function hasFractionalCharge(f: Field): boolean {
  if (f.su3 !== "1") return false;
  return f.su2 === "1" ? mod6(f.y6) !== 0 : mod6(f.y6 + 3) !== 0;
}

/**
 * Light charged exotics: fields that cannot be made heavy (they are in the chiral remainder),
 * carry some gauge charge, and are not one of the five Standard Model representations.
 */
export function lightChargedExotics(t: Theory): Theory {
  return chiralRemainder(t).filter((f) => !isGaugeSinglet(f) && !isStandardModelField(f));
}

/** The unpaired fields that carry some gauge charge. */
export function chargedChiralFields(t: Theory): Theory {
  return chiralRemainder(t).filter((f) => !isGaugeSinglet(f));
}

/**
 * At least three gauge-charged fields stay unpaired and one of them is an SU(3) or SU(2)
 * multiplet: a theory with a chiral non-abelian sector, not one made of vector-like pairs or of
 * a couple of charged singlets.
 */
export function isNonTrivial(t: Theory): boolean {
  const charged = chargedChiralFields(t);
  return charged.length >= 3 && charged.some((f) => f.su3 !== "1" || f.su2 !== "1");
}
