/**
 * Reasoning models (DeepSeek-R1, Qwen3, QwQ and their distills) put their chain of thought in
 * the reply, between `<think>` and `</think>`, or in a separate `reasoning_content` field. That
 * text is paid for but is not the answer: a scaffold or a score inside it must not be parsed.
 */
export interface SplitReply {
  /** What the model answered, with the thinking removed. */
  answer: string;
  /** The thinking, when there was any. */
  reasoning?: string;
}

const THINK_BLOCK = /<think>([\s\S]*?)<\/think>/gi;

export function splitReasoning(content: string): SplitReply {
  const thoughts: string[] = [];
  let answer = content.replace(THINK_BLOCK, (_m, inner: string) => {
    thoughts.push(inner.trim());
    return "";
  });
  // A reply cut off while thinking (max_tokens) has an opening tag and no closing one.
  const open = answer.search(/<think>/i);
  if (open >= 0) {
    thoughts.push(answer.slice(open + "<think>".length).trim());
    answer = answer.slice(0, open);
  }
  // Some servers strip the opening tag that the chat template emitted, leaving only the closing one.
  const close = answer.toLowerCase().lastIndexOf("</think>");
  if (close >= 0) {
    thoughts.push(answer.slice(0, close).trim());
    answer = answer.slice(close + "</think>".length);
  }
  if (thoughts.length === 0) return { answer: content };
  return { answer: answer.trim(), reasoning: thoughts.filter(Boolean).join("\n\n") };
}
