/** The action's log for the post step: every line through here is printed as text, never run as a command. */
import * as core from '@actions/core';
import { safeLine } from '../deploy/log-line.ts';

export const log = {
  info: (line: string): void => core.info(safeLine(line)),
  warning: (line: string): void => core.warning(safeLine(line)),
};
