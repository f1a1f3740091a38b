/**
 * Registers tfjs-core's gradient functions. The package's CommonJS build (what Node imports)
 * contains no gradients; they exist only as ES modules with extensionless imports, which a
 * small resolve hook makes loadable. The registry is global, so ops from the CommonJS build
 * find them.
 */
import { register } from "node:module";
import * as tf from "@tensorflow/tfjs-core";

if (!tf.getGradient("Neg")) {
  register("./tfjs-resolve-hook.mjs", import.meta.url);
  await import("@tensorflow/tfjs-core/dist/register_all_gradients.js");
  if (!tf.getGradient("Neg")) throw new Error("tfjs gradients failed to register");
}
