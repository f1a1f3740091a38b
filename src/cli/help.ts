/**
 * How every command's --help is laid out: wrapped to the terminal's width (or $COLUMNS when the
 * output is not a terminal), long flag names included, descriptions starting with a capital,
 * indented lists and tables in descriptions wrapped under their own column.
 */
import { type Command, Help } from "commander";

/** Below this many columns for a description, commander would stop wrapping altogether. */
const MIN_WRAP = 24;

function widthOf(stream: NodeJS.WriteStream): number {
  if (stream.isTTY && stream.columns) return stream.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isInteger(env) && env >= MIN_WRAP ? env : 80;
}

/** "completions per prompt" → "Completions per prompt"; text starting otherwise is left alone. */
export function capitalize(text: string): string {
  return text.replace(/^[a-z]/, (c) => c.toUpperCase());
}

/**
 * Wraps `text` to `width` at spaces. Prose is reflowed: a line break inside a paragraph was
 * written for some other width, so it becomes a space; blank lines and indented lines (lists,
 * tables) stay where they are. An indented line that runs over keeps its indentation on the
 * following lines, and a table row ("  name   description") hangs under its second column.
 */
export function wrapText(text: string, width: number): string {
  return reflow(text)
    .map((line) => wrapLine(line, width))
    .join("\n");
}

function reflow(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const prev = out.at(-1);
    const prose = (l: string) => l.trim() !== "" && !/^\s/.test(l);
    if (prev !== undefined && prose(prev) && prose(line)) out[out.length - 1] = `${prev} ${line}`;
    else out.push(line);
  }
  return out;
}

/** The first sentence of a description's first paragraph: what a list of commands shows. */
export function firstSentence(description: string): string {
  const paragraph = reflow(description.split(/\n\s*\n/)[0] ?? "").join(" ");
  return /^.*?[.!?](?=\s+[A-Z]|$)/s.exec(paragraph)?.[0] ?? paragraph;
}

function wrapLine(line: string, width: number): string {
  if (line.length <= width) return line;
  const row = /^(\s+\S+(?: \S+)*\s{2,})\S/.exec(line);
  const hang = " ".repeat(row ? row[1]!.length : /^\s*/.exec(line)![0].length);
  const out: string[] = [];
  let current = "";
  for (const word of line.trimEnd().split(/(?<=\S)(?= )/)) {
    // the first piece keeps the line's own indentation; later pieces start with their space
    if (current !== "" && current.length + word.length > width && current.trim() !== "") {
      out.push(current.trimEnd());
      current = hang + word.trimStart();
    } else current += word;
  }
  out.push(current.trimEnd());
  return out.join("\n");
}

/** Applies the layout to `program`; call before registering commands so that they inherit it. */
export function configureHelpLayout(program: Command): Command {
  const base = Help.prototype;
  return program
    .configureOutput({
      getOutHelpWidth: () => widthOf(process.stdout),
      getErrHelpWidth: () => widthOf(process.stderr),
    })
    .configureHelp({
      minWidthToWrap: MIN_WRAP,
      // descriptions with indented lists are wrapped too, under their own indentation
      preformatted: () => false,
      boxWrap: (str: string, width: number) => wrapText(str, width),
      optionDescription(option) {
        return capitalize(base.optionDescription.call(this, option));
      },
      argumentDescription(argument) {
        return capitalize(base.argumentDescription.call(this, argument));
      },
      commandDescription(cmd) {
        return capitalize(base.commandDescription.call(this, cmd));
      },
      // In a list of commands, the first sentence of each description says enough.
      subcommandDescription(cmd) {
        return capitalize(cmd.summary() || firstSentence(cmd.description()));
      },
    });
}
