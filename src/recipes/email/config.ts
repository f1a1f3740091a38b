/**
 * Training configuration for the email task, read from the seed's environment variables and
 * overridden by command-line flags. Every value is validated; an error names the variable and the text.
 */
import { z } from "zod";

export interface EmailTrainingConfig {
  trainDatasetSize: number;
  evalDatasetSize: number;
  maxSteps: number;
  learningRate: number;
  perDeviceTrainBatchSize: number;
  numGenerations: number;
  beta: number;
  maxTurns: number;
  maxTokens: number;
  outputDir: string;
}

type Kind = "positiveInt" | "positiveNumber" | "nonNegativeNumber" | "path";

/** Each setting and its environment variable; the CLI flag is the variable in kebab case (see emailFlag). */
export const EMAIL_TRAINING_FIELDS: readonly { key: keyof EmailTrainingConfig; env: string; kind: Kind }[] = [
  { key: "trainDatasetSize", env: "TRAIN_DATASET_SIZE", kind: "positiveInt" },
  { key: "evalDatasetSize", env: "EVAL_DATASET_SIZE", kind: "positiveInt" },
  { key: "maxSteps", env: "MAX_STEPS", kind: "positiveInt" },
  { key: "learningRate", env: "LEARNING_RATE", kind: "positiveNumber" },
  { key: "perDeviceTrainBatchSize", env: "PER_DEVICE_TRAIN_BATCH_SIZE", kind: "positiveInt" },
  { key: "numGenerations", env: "NUM_GENERATIONS", kind: "positiveInt" },
  { key: "beta", env: "BETA", kind: "nonNegativeNumber" },
  { key: "maxTurns", env: "MAX_TURNS", kind: "positiveInt" },
  { key: "maxTokens", env: "MAX_TOKENS", kind: "positiveInt" },
  { key: "outputDir", env: "OUTPUT_DIR", kind: "path" },
];

// Numbers arrive as strings from the environment and as numbers from parsed flags; both go
// through the same schema. A blank string never coerces to 0.
const numeric = z
  .union([
    z.number(),
    z
      .string()
      .trim()
      .regex(/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i),
  ])
  .pipe(z.coerce.number());

const SCHEMAS: Record<Kind, { schema: z.ZodType; expects: string }> = {
  positiveInt: { schema: numeric.pipe(z.number().int().positive()), expects: "a positive integer" },
  positiveNumber: { schema: numeric.pipe(z.number().positive().finite()), expects: "a positive number" },
  nonNegativeNumber: {
    schema: numeric.pipe(z.number().nonnegative().finite()),
    expects: "a non-negative number",
  },
  path: { schema: z.string().trim().min(1), expects: "a non-empty path" },
};

function parseField(kind: Kind, name: string, raw: unknown): unknown {
  const { schema, expects } = SCHEMAS[kind];
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(`${name} must be ${expects}, got ${JSON.stringify(raw)}`);
  return parsed.data;
}

/**
 * The defaults (the recipe's one set, presets.ts emailDefaults), then environment variables, then
 * flags (flags win). Unset or empty values are skipped.
 */
export function parseEmailTrainingEnv(
  env: NodeJS.ProcessEnv,
  defaults: EmailTrainingConfig,
  flags: Partial<EmailTrainingConfig> = {},
  /** how errors name a flag; the CLI passes its spelling (--max-steps). */
  flagName: (field: { key: keyof EmailTrainingConfig; env: string }) => string = (f) => f.key,
): EmailTrainingConfig {
  const config: Record<string, unknown> = { ...defaults };
  for (const field of EMAIL_TRAINING_FIELDS) {
    const fromFlag = flags[field.key];
    const fromEnv = env[field.env];
    if (fromFlag !== undefined) config[field.key] = parseField(field.kind, flagName(field), fromFlag);
    else if (fromEnv !== undefined && fromEnv.trim() !== "") {
      config[field.key] = parseField(field.kind, field.env, fromEnv);
    }
  }
  return config as unknown as EmailTrainingConfig;
}

/** The command-line flag of a setting: its variable in kebab case, MAX_STEPS → --max-steps. */
export function emailFlag(field: { env: string }): string {
  return `--${field.env.toLowerCase().replace(/_/g, "-")}`;
}
