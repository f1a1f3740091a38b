/**
 * Transcript rendering for training. Segments keep who wrote each piece of text so that a
 * tokenizer can build the loss mask: only policy text is trained, the prompt and the tool
 * results are context.
 */

import { formatToolResult } from "./prompt.ts";
import type { EpisodeTurn } from "./types.ts";

export type SegmentRole = "prompt" | "policy" | "tool";

export type Segment = { role: SegmentRole; text: string };

/**
 * The prompt (when given), then each policy turn on its own line followed by its fenced tool
 * result. Without a prompt the segments start at the first policy turn, for callers that
 * build the prompt with their own chat template.
 */
export function renderEpisode(turns: readonly EpisodeTurn[], prompt?: string): Segment[] {
  const segments: Segment[] = prompt === undefined ? [] : [{ role: "prompt", text: `${prompt.trimEnd()}\n` }];
  for (const turn of turns) {
    // The newline closes the policy's turn; it is part of what the policy must learn to emit.
    segments.push({ role: "policy", text: `${turn.policy.trimEnd()}\n` });
    if (turn.toolResult !== null)
      segments.push({ role: "tool", text: `${formatToolResult(turn.toolResult)}\n` });
  }
  return segments;
}

export function transcriptText(segments: readonly Segment[]): string {
  return segments.map((s) => s.text).join("");
}

/**
 * Token ids and the loss mask (1 on policy tokens, 0 elsewhere). Each segment is encoded on its
 * own, so no token straddles a role boundary — the same split a multi-turn rollout produces.
 */
export function tokenMask(
  segments: readonly Segment[],
  encode: (text: string) => number[],
): { ids: number[]; mask: number[] } {
  const ids: number[] = [];
  const mask: number[] = [];
  for (const s of segments) {
    const part = encode(s.text);
    const m = s.role === "policy" ? 1 : 0;
    for (const id of part) {
      ids.push(id);
      mask.push(m);
    }
  }
  return { ids, mask };
}
