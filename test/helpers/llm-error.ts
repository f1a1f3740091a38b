import assert from "node:assert/strict";
import { LLMError } from "../../src/llm/client.ts";

/** The LLMError a call rejects with; fails the test when it resolves or rejects otherwise. */
export async function llmFailure(p: Promise<unknown>): Promise<LLMError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LLMError, `expected LLMError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the call to fail");
}
