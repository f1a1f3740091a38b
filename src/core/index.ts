export * from "./adam.ts";
export * from "./advantages.ts";
export * from "./config.ts";
export * from "./loss.ts";
export * from "./metrics.ts";
export * from "./rewards.ts";
export * from "./rng.ts";
