import { anomalyCoefficients, isAnomalyFree } from "./anomalies.ts";
import { type Field, formatTheory, type SU3, sortedTheory, type Theory } from "./fields.ts";
import { chiralRemainder, isNonTrivial, isStandardModelField } from "./spectrum.ts";

/**
 * When two generated theories are the same theory.
 *
 * The order of the fields means nothing: a theory is a multiset of multiplets.
 *
 * Nor does the choice of gauge-group basis. SU(3) has one outer automorphism, complex
 * conjugation (3 ↔ 3̄), and U(1) one, Y → −Y; SU(2) has none. Relabelling the gauge fields by an
 * automorphism maps a theory onto an isomorphic one, and every anomaly coefficient and the
 * chiral remainder only change sign or stay put, so all four images are anomaly-free together.
 * The product of the two, global conjugation (every field replaced by its conjugate), is the
 * same theory written with right-handed fields instead of left-handed ones — the Standard
 * Model's generation and its conjugate list the same particles. Counting them apart would
 * credit a policy with two discoveries for writing one theory in two notations, so the four
 * images form one class. Rescaling the hypercharge is not such a relabelling here: Y is tied to
 * the electric charge Q = T3 + Y that the reward's fractional-charge check uses.
 */

const SU3_CONJUGATE: Record<SU3, SU3> = { "1": "1", "3": "3b", "3b": "3" };

const flip3 = (f: Field): Field => ({ ...f, su3: SU3_CONJUGATE[f.su3] });

/** The four images of a theory under 3 ↔ 3̄ and Y → −Y (identity first). */
export function relabellings(t: Theory): Theory[] {
  const flipY = (f: Field): Field => ({ ...f, y6: f.y6 === 0 ? 0 : -f.y6 });
  return [t, t.map(flip3), t.map(flipY), t.map((f) => flip3(flipY(f)))];
}

/**
 * The class of a theory as one string: of its four relabellings (fields sorted), the one with the
 * most Standard Model multiplets — so a theory containing the SM reads in the SM's own
 * convention — and of those the first in string order. Equal exactly for the same theory.
 */
export function theoryClass(t: Theory): string {
  let best = "";
  let bestSm = -1;
  for (const image of relabellings(t)) {
    const sm = image.filter(isStandardModelField).length;
    const text = formatTheory(sortedTheory(image));
    if (sm > bestSm || (sm === bestSm && text < best)) {
      best = text;
      bestSm = sm;
    }
  }
  return best;
}

/** What the recipe calls a valid theory: anomaly-free (Witten's condition included) and non-trivial. */
export function isValidTheory(t: Theory): boolean {
  return isAnomalyFree(anomalyCoefficients(t)) && isNonTrivial(t);
}

/**
 * The class of a theory's chiral core: what is left once vector-like pairs and neutral singlets,
 * which can all be made heavy, are removed. Theories that differ only in such additions share a
 * core; distinct cores are distinct chiral contents, the stricter count of what a run has found.
 */
export function coreClass(t: Theory): string {
  return theoryClass(chiralRemainder(t));
}

/**
 * The class of a theory's field content: its multiplets' SU(3) × SU(2) representations with the
 * hypercharges left out, up to 3 ↔ 3̄. The Standard Model generation with a neutral singlet and
 * the same generation with a charged singlet pair differ in theory but not in content (both add
 * singlets); with a vector-like quark doublet pair they differ in content too.
 */
export function contentClass(t: Theory): string {
  const reps = (image: Theory) =>
    sortedTheory(image.map((f) => ({ ...f, y6: 0 })))
      .map((f) => `(${f.su3},${f.su2})`)
      .join(" ");
  const a = reps(t);
  const b = reps(t.map(flip3));
  return a < b ? a : b;
}
