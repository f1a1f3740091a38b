/**
 * The slice of the LLM client that the training-free solver uses. `LLMClient` from
 * `src/llm/client.ts` satisfies it; keeping the dependency this narrow lets the solver run
 * against any chat backend with the same contract (retries and concurrency live in the client).
 */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatOptions<T> {
  temperature: number;
  maxTokens?: number;
  /** Throwing here marks the reply unusable; the client retries within its budget. */
  parse?: (text: string) => T;
}

export interface ChatResult<T> {
  text: string;
  value: T;
  attempts: number;
}

export interface ChatClient {
  chat<T = string>(messages: ChatMessage[], opts: ChatOptions<T>): Promise<ChatResult<T>>;
}

export function userMessage(content: string): ChatMessage[] {
  return [{ role: "user", content }];
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
