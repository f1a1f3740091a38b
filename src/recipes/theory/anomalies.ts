import { type Field, fieldDim, su2Dim, su3Dim, type Theory } from "./fields.ts";

/**
 * Gauge and gravitational anomaly coefficients of a theory of left-handed Weyl fermions, as
 * exact integers. With Y = Y6/6, T(3) = T(3̄) = T(2) = 1/2, A(3) = 1, A(3̄) = −1, the physical
 * coefficient equals the stored integer divided by:
 *   su3Cubed  = Σ A(r3)·dim(r2)             (× 1, already integral)
 *   su3SqU1   = Σ_{coloured} dim(r2)·Y6     = 12 · Σ T(r3)·dim(r2)·Y
 *   su2SqU1   = Σ_{doublets} dim(r3)·Y6     = 12 · Σ T(r2)·dim(r3)·Y
 *   u1Cubed   = Σ dim·Y6³                   = 216 · Σ dim·Y³
 *   gravU1    = Σ dim·Y6                    = 6 · Σ dim·Y
 *   witten    = (Σ_{doublets} dim(r3)) mod 2  (the global SU(2) anomaly: an odd number of doublets)
 * A coefficient is zero exactly when the physical anomaly cancels, which is all the reward needs.
 */
export interface AnomalyCoefficients {
  su3Cubed: number;
  su3SqU1: number;
  su2SqU1: number;
  u1Cubed: number;
  gravU1: number;
  /** Number of SU(2) doublets (counting colour multiplicity) mod 2. */
  witten: number;
}

/** The five perturbative coefficients (Witten's global anomaly is separate). */
export const PERTURBATIVE_ANOMALIES = ["su3Cubed", "su3SqU1", "su2SqU1", "u1Cubed", "gravU1"] as const;
export type PerturbativeAnomaly = (typeof PERTURBATIVE_ANOMALIES)[number];

function cubicIndex(f: Field): number {
  return f.su3 === "3" ? 1 : f.su3 === "3b" ? -1 : 0;
}

export function anomalyCoefficients(t: Theory): AnomalyCoefficients {
  let su3Cubed = 0;
  let su3SqU1 = 0;
  let su2SqU1 = 0;
  let u1Cubed = 0;
  let gravU1 = 0;
  let doublets = 0;
  for (const f of t) {
    const d3 = su3Dim(f.su3);
    const d2 = su2Dim(f.su2);
    su3Cubed += cubicIndex(f) * d2;
    if (f.su3 !== "1") su3SqU1 += d2 * f.y6;
    if (f.su2 === "2") {
      su2SqU1 += d3 * f.y6;
      doublets += d3;
    }
    u1Cubed += fieldDim(f) * f.y6 ** 3;
    gravU1 += fieldDim(f) * f.y6;
  }
  return { su3Cubed, su3SqU1, su2SqU1, u1Cubed, gravU1, witten: doublets % 2 };
}

/** All five perturbative coefficients vanish and the number of doublets is even. */
export function isAnomalyFree(c: AnomalyCoefficients): boolean {
  return PERTURBATIVE_ANOMALIES.every((k) => c[k] === 0) && c.witten === 0;
}
