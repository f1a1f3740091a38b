// Node resolve hook: tfjs-core ships its per-kernel gradient modules only as ES modules with
// extensionless relative imports, which Node's loader rejects. Appending ".js" inside that
// package lets `register_all_gradients.js` load; nothing else is affected.
const TFJS_DIST = "/@tensorflow/tfjs-core/dist/";

export async function resolve(specifier, context, nextResolve) {
  if (
    context.parentURL?.includes(TFJS_DIST) &&
    (specifier.startsWith("./") || specifier.startsWith("../")) &&
    !specifier.endsWith(".js")
  ) {
    return nextResolve(`${specifier}.js`, context);
  }
  return nextResolve(specifier, context);
}
