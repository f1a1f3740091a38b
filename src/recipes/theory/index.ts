/** The physics-theory environment: fields, anomalies, spectrum checks, reward, grammar, task. */
export * from "./anomalies.ts";
export * from "./fields.ts";
export * from "./grammar.ts";
export * from "./reward.ts";
export * from "./spectrum.ts";
export * from "./task.ts";
