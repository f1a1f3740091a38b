/**
 * The physics-theory environment: fields, anomalies, spectrum checks, reward, grammar, task, and
 * the measures of discovery (theory classes, their exact count, the archive of those found).
 */
export * from "./anomalies.ts";
export * from "./archive.ts";
export * from "./canonical.ts";
export * from "./enumerate.ts";
export * from "./fields.ts";
export * from "./grammar.ts";
export * from "./reward.ts";
export * from "./spectrum.ts";
export * from "./task.ts";
