import type { ChatMessage } from "./port.ts";

/** A conversation of one user message, the form of every single-prompt request. */
export function userMessage(content: string): ChatMessage[] {
  return [{ role: "user", content }];
}

/** The text of a failure, as it is recorded beside the result it spoiled. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
