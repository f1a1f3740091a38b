import { type Command, Option } from "commander";
import type { BackendName } from "../../model/backend.ts";
import { intFlag } from "../flags.ts";

interface ServeCliOptions {
  model: string;
  adapter?: string;
  host: string;
  port: number;
  servedModelName?: string;
  apiKey?: string;
  seed: number;
  maxBatchRows: number;
  backend: BackendName;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command("serve")
    .description(
      "Serve a model directory as an OpenAI-compatible endpoint (GET /v1/models, POST /v1/chat/completions\n" +
        "with temperature, top_p, max_tokens, seed, n, stop, stream), sampling in process with a KV cache,\n" +
        "so that grpo generator / tf-train and any OpenAI client can use a local model with no other server.\n" +
        "Requests that arrive together and sample alike share one batch; a seed gives the same reply whatever it is batched with.",
    )
    .requiredOption("--model <dir>", "the model directory (or an adapter directory over its base)")
    .option("--adapter <dir>", "a PEFT LoRA adapter to apply over --model")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port (0: any free port)", intFlag("--port", 0), 8000)
    .option("--served-model-name <name>", "the model id clients ask for (default: the directory's name)")
    .option("--api-key <key>", "require this key (Authorization: Bearer <key>)")
    .option("--seed <n>", "seed of the requests that give none", intFlag("--seed", 0), 0)
    .option(
      "--max-batch-rows <n>",
      "most completions sampled in one batch",
      intFlag("--max-batch-rows", 1),
      16,
    )
    .option("--quiet", "no line per request")
    .addOption(new Option("--backend <name>", "tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo serve --model SmolLM2-135M-Instruct --adapter outputs/my-run/final --port 8000\n" +
        "  curl http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' \\\n" +
        '    -d \'{"model": "final", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 32}\'',
    )
    .action(async (o: ServeCliOptions) => {
      const [{ initBackend }, { loadTextModel }, { startServer }] = await Promise.all([
        import("../../model/backend.ts"),
        import("../../model/generate.ts"),
        import("../../model/serve.ts"),
      ]);
      const backend = await initBackend(o.backend);
      const m = loadTextModel(o.model, o.adapter === undefined ? {} : { adapter: o.adapter });
      const server = await startServer(m, {
        host: o.host,
        port: o.port,
        seed: o.seed,
        maxBatchRows: o.maxBatchRows,
        ...(o.servedModelName === undefined ? {} : { modelName: o.servedModelName }),
        ...(o.apiKey === undefined ? {} : { apiKey: o.apiKey }),
        log: o.quiet ? undefined : (line) => console.error(line),
      });
      console.log(`serving "${server.modelName}" at ${server.baseURL} (backend ${backend}; Ctrl-C stops)`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await server.close();
      m.model.dispose();
    });
}
