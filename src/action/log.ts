/** The action's log: every line through here is printed as text, never run as a workflow command. */
import * as core from '@actions/core';
import { safeLine, safeLines } from './log-line.ts';

/** One line: a line break inside it is shown as `\n`, never starts a line of its own. */
export function info(line: string): void {
  core.info(safeLine(line));
}

/** Our own multi-line text (a table whose cells are escaped already): each line made safe. */
export function infoLines(text: string): void {
  core.info(safeLines(text));
}

/** core.warning escapes its message for the annotation already; this keeps the text readable. */
export function warning(text: string): void {
  core.warning(safeLine(text));
}

export function startGroup(title: string): void {
  core.startGroup(safeLine(title));
}

export const log = { info, warning };
