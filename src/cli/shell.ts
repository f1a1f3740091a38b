/** Shell words for the commands the CLI prints or writes (summaries, batch scripts). */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one word for bash: left bare when it is plainly safe, otherwise single-quoted. */
export function shellQuote(word: string): string {
  if (SAFE_WORD.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** A command line a person can paste: each word quoted as needed. */
export function shellCommand(words: readonly string[]): string {
  return words.map(shellQuote).join(" ");
}
