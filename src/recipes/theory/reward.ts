import {
  type AnomalyCoefficients,
  anomalyCoefficients,
  isAnomalyFree,
  PERTURBATIVE_ANOMALIES,
  type PerturbativeAnomaly,
} from "./anomalies.ts";
import type { Theory } from "./fields.ts";
import { chargedChiralFields, hasFractionalCharge, isNonTrivial, lightChargedExotics } from "./spectrum.ts";

/**
 * Reward for a generated theory, shaped so that partial progress pays.
 *
 * Terms (all computed every time, so they can be logged; the phase decides which enter the total):
 *   length            min(n, targetFields) / targetFields                            ∈ [0, 1]   phase ≥ 1
 *   fractional_charge −(colour singlets with non-integer electric charge) / n        ∈ [−1, 0]  phase ≥ 2
 *   exotics           −(light charged exotics) / n                                   ∈ [−1, 0]  phase ≥ 2
 *   chirality         1 if nonTrivial, else ½·min(c, 3)/3 with c = charged unpaired fields ∈ [0, 1] phase 3
 *   anomaly           mean over SU(3)³, SU(3)²U(1), SU(2)²U(1), U(1)³, grav-U(1) of
 *                     ½·(1 − ℓ/(ℓ + ℓ₀)) + ½·[c = 0]  with ℓ = log(1 + |c|), ℓ₀ = log(1 + scale),
 *                     and of the Witten score 1 if the doublet count is even else 0   ∈ [0, 1]   phase 3
 * The smooth part is the usual −log(1 + |c|) squashed into a bounded, strictly monotone range; at
 * |c| = scale a coefficient earns ¼, at 0 it earns 1. The anomaly term is multiplied by the
 * chirality term because a vector-like theory cancels every anomaly for free.
 *
 * total = (weighted mean of the active positive terms) + Σ weight·penalty, clamped to [−1, 1]:
 * the penalties are not averaged away as more positive terms switch on, so a field that is an
 * exotic costs the same in phase 3 as in phase 2. An unparseable theory scores exactly −1; a
 * parseable one never scores below −(weights.exotics + weights.fractionalCharge) = −1 by default.
 * In phase 3 the maximum 1 is reached by a non-trivial anomaly-free theory with at least
 * targetFields fields and no exotic or fractionally charged field (one SM generation does).
 */

export interface TheoryRewardWeights {
  length: number;
  chirality: number;
  anomaly: number;
  exotics: number;
  fractionalCharge: number;
}

export const DEFAULT_THEORY_REWARD_WEIGHTS: Readonly<TheoryRewardWeights> = Object.freeze({
  length: 1,
  chirality: 1,
  anomaly: 4,
  exotics: 0.5,
  fractionalCharge: 0.5,
});

/**
 * Coefficient magnitude (in the integer units of anomalyCoefficients) at which the smooth part
 * is halfway: roughly what a single Standard-Model-sized field contributes.
 */
export const DEFAULT_ANOMALY_SCALES: Readonly<Record<PerturbativeAnomaly, number>> = Object.freeze({
  su3Cubed: 2,
  su3SqU1: 6,
  su2SqU1: 6,
  u1Cubed: 216,
  gravU1: 6,
});

export type CurriculumPhase = 1 | 2 | 3;

export interface TheoryRewardConfig {
  weights?: Partial<TheoryRewardWeights>;
  /** 1 = length/syntax only, 2 = + exotics and fractional charges, 3 = + chirality and anomalies. Default 3. */
  phase?: CurriculumPhase;
  /** Number of fields at which the length term saturates. Default 5 (one generation). */
  targetFields?: number;
  scales?: Partial<Record<PerturbativeAnomaly, number>>;
  /**
   * Phase 3 only: factor in [0, 1] applied to the positive total of a theory that is not yet a
   * success (anomaly-free and non-trivial). Default 1 (plain shaping). Below 1, exact
   * cancellation dominates: with partial credit worth up to 1, a short chiral but anomalous
   * theory is a local optimum that a rare anomaly-free sample cannot outweigh in a group.
   */
  partialCredit?: number;
}

export interface TheoryReward {
  total: number;
  anomalyFree: boolean;
  /** At least 3 gauge-charged fields remain unpaired and one of them is an SU(3) or SU(2) multiplet. */
  nonTrivial: boolean;
  /**
   * The goal of the current phase is met, for a curriculum's success rate: phase 1 needs at least
   * targetFields fields; phase 2 also no exotic or fractionally charged field; phase 3 needs
   * anomalyFree and nonTrivial.
   */
  success: boolean;
  terms: Record<string, number>;
  coefficients: AnomalyCoefficients;
}

function resolveConfig(cfg: TheoryRewardConfig) {
  const phase = cfg.phase ?? 3;
  if (phase !== 1 && phase !== 2 && phase !== 3)
    throw new Error(`theory reward: phase must be 1, 2 or 3, got ${phase}`);
  const weights = { ...DEFAULT_THEORY_REWARD_WEIGHTS, ...cfg.weights };
  for (const [name, w] of Object.entries(weights)) {
    if (!Number.isFinite(w) || w < 0) throw new Error(`theory reward: weights.${name} must be ≥ 0, got ${w}`);
  }
  const targetFields = cfg.targetFields ?? 5;
  if (!Number.isInteger(targetFields) || targetFields < 1) {
    throw new Error(`theory reward: targetFields must be a positive integer, got ${targetFields}`);
  }
  const scales = { ...DEFAULT_ANOMALY_SCALES, ...cfg.scales };
  for (const [name, s] of Object.entries(scales)) {
    if (!Number.isFinite(s) || s <= 0) throw new Error(`theory reward: scales.${name} must be > 0, got ${s}`);
  }
  const partialCredit = cfg.partialCredit ?? 1;
  if (!(partialCredit >= 0 && partialCredit <= 1)) {
    throw new Error(`theory reward: partialCredit must be in [0, 1], got ${partialCredit}`);
  }
  return { phase, weights, targetFields, scales, partialCredit };
}

/** Score of one coefficient in (0, 1]: strictly decreasing in |c|, 1 exactly at c = 0. */
export function coefficientScore(c: number, scale: number): number {
  const l = Math.log1p(Math.abs(c));
  const smooth = 1 - l / (l + Math.log1p(scale));
  return 0.5 * smooth + (c === 0 ? 0.5 : 0);
}

/** The anomaly term and its per-coefficient parts (keys "anomaly/<name>"). */
export function anomalyScore(
  c: AnomalyCoefficients,
  scales: Record<PerturbativeAnomaly, number> = DEFAULT_ANOMALY_SCALES,
): { score: number; parts: Record<string, number> } {
  const parts: Record<string, number> = {};
  let sum = 0;
  for (const k of PERTURBATIVE_ANOMALIES) {
    const s = coefficientScore(c[k], scales[k]);
    parts[`anomaly/${k}`] = s;
    sum += s;
  }
  const witten = c.witten === 0 ? 1 : 0;
  parts["anomaly/witten"] = witten;
  sum += witten;
  return { score: sum / (PERTURBATIVE_ANOMALIES.length + 1), parts };
}

function chirality(t: Theory): { nonTrivial: boolean; score: number } {
  const nonTrivial = isNonTrivial(t);
  const charged = chargedChiralFields(t).length;
  return { nonTrivial, score: nonTrivial ? 1 : (0.5 * Math.min(charged, 3)) / 3 };
}

export function theoryReward(t: Theory | null, cfg: TheoryRewardConfig = {}): TheoryReward {
  const { phase, weights, targetFields, scales, partialCredit } = resolveConfig(cfg);
  if (t === null) {
    return {
      total: -1,
      anomalyFree: false,
      success: false,
      nonTrivial: false,
      terms: { syntax: -1 },
      coefficients: anomalyCoefficients([]),
    };
  }
  const n = t.length;
  const coefficients = anomalyCoefficients(t);
  const length = Math.min(n, targetFields) / targetFields;
  const nFractional = t.filter(hasFractionalCharge).length;
  const nExotic = lightChargedExotics(t).length;
  // Written as 0 when clean so that logs and equality checks never see −0.
  const fractional = nFractional === 0 ? 0 : -nFractional / n;
  const exotics = nExotic === 0 ? 0 : -nExotic / n;
  const chiral = chirality(t);
  const anomaly = anomalyScore(coefficients, scales);

  let gain = weights.length * length;
  let norm = weights.length;
  if (phase >= 3) {
    gain += weights.chirality * chiral.score + weights.anomaly * anomaly.score * chiral.score;
    norm += weights.chirality + weights.anomaly;
  }
  const penalty = phase >= 2 ? weights.exotics * exotics + weights.fractionalCharge * fractional : 0;
  const anomalyFree = isAnomalyFree(coefficients);
  const shaped = Math.max(-1, Math.min(1, (norm === 0 ? 0 : gain / norm) + penalty));
  const discounted = phase === 3 && !(anomalyFree && chiral.nonTrivial) && shaped > 0;
  const total = discounted ? shaped * partialCredit : shaped;
  const success =
    phase === 1
      ? length === 1
      : phase === 2
        ? length === 1 && nExotic === 0 && nFractional === 0
        : anomalyFree && chiral.nonTrivial;
  return {
    total,
    anomalyFree,
    success,
    nonTrivial: chiral.nonTrivial,
    terms: {
      length,
      fractional_charge: fractional,
      exotics,
      chirality: chiral.score,
      anomaly: anomaly.score,
      ...anomaly.parts,
    },
    coefficients,
  };
}
