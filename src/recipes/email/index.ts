/**
 * The email-search task: synthetic inboxes, tools, episodes, rewards and demonstrations.
 *
 * A multi-turn rollout drives an episode with the policy's text until it is done:
 *
 *   const episode = new EmailEpisode(inbox, question, { maxTurns, maxTokens });
 *   let context = `${episode.prompt}\n`;
 *   while (!episode.done) {
 *     const text = sample(context);                  // one line: a tool call
 *     const { toolResult } = episode.step(text, { tokens: countTokens(text) });
 *     context += `${text}\n${toolResult === null ? "" : `${formatToolResult(toolResult)}\n`}`;
 *   }
 *   const segments = episode.render();               // roles give the loss mask
 *   const reward = episode.finalReward();
 */
export {
  answerAppearsIn,
  answersMatch,
  findAnswerSpan,
  isIDontKnow,
  normaliseText,
  parseAmount,
  parseDate,
} from "./answer.ts";
export {
  EMAIL_TRAINING_FIELDS,
  type EmailTrainingConfig,
  emailFlag,
  parseEmailTrainingEnv,
} from "./config.ts";
export { type DemonstrationOptions, demonstration } from "./demonstration.ts";
export {
  EmailEpisode,
  type EpisodeOptions,
  type EpisodeStats,
  MAX_TURNS,
  type StepResult,
} from "./episode.ts";
export {
  type DatasetOptions,
  type EmailDataset,
  type GeneratedInbox,
  generateDataset,
  generateInbox,
  type InboxOptions,
} from "./inbox.ts";
export { buildPrompt, formatToolResult, INSTRUCTIONS } from "./prompt.ts";
export { renderEpisode, type Segment, type SegmentRole, tokenMask, transcriptText } from "./render.ts";
export {
  computeReward,
  type Outcome,
  REWARD,
  type RewardInput,
  type RewardResult,
  type Verdict,
} from "./reward.ts";
export {
  findEmail,
  formatEmail,
  formatSearchResults,
  MAX_SEARCH_RESULTS,
  type SearchArgs,
  type SearchHit,
  searchEmails,
} from "./search.ts";
export {
  formatToolCall,
  type ParseResult,
  parseToolCall,
  type ToolCall,
  type ToolErrorKind,
  type ToolName,
} from "./tool-call.ts";
export type { Email, EpisodeTurn, FactKind, Inbox, Person, Question } from "./types.ts";
