/**
 * The chat-model port: the slice of a chat model that the training-free code calls. `LLMClient`
 * implements it (with retries, limits, usage and a request cache); keeping the dependency this
 * narrow lets the learning loop and the recipes run against any chat backend with this contract.
 */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The JSON Schema a reply should follow; backends that can enforce it (structured output) may. */
export interface JsonReplySchema {
  name: string;
  schema: Record<string, unknown>;
}

export interface ChatOptions<T> {
  temperature: number;
  maxTokens?: number;
  /** Throwing here marks the reply unusable; the client retries within its budget. */
  parse?: (text: string) => T;
  /** The reply is JSON of this schema: a hint, the parser still checks the reply. */
  json?: JsonReplySchema;
  /** Aborting stops waiting and rejects with the signal's reason; it is never retried. */
  signal?: AbortSignal;
}

export interface ChatResult<T> {
  text: string;
  value: T;
  attempts: number;
}

export interface ChatClient {
  chat<T = string>(messages: ChatMessage[], opts: ChatOptions<T>): Promise<ChatResult<T>>;
}

/**
 * A chat model given as a bare function: the port's `chat` without the client around it. It may
 * return the reply text alone; the caller then applies `opts.parse` itself.
 */
export type ChatFunction = (
  messages: ChatMessage[],
  opts: ChatOptions<string>,
) => Promise<string | ChatResult<string>>;
