/**
 * A setting that cannot be used: which one, the value, and what is allowed. Its text names settings through
 * markers, so each front end phrases it with its own names (the action's input `thread-num`, the command line's
 * `--thread-num`); `message` is the action's phrasing.
 */

/** A front end's names for the settings. */
export interface SettingNames {
  /** `input \`x\`` as the subject of a sentence. */
  subject(input: string): string;
  /** `\`x\`` inside a sentence. */
  mention(input: string): string;
}

export const ACTION_NAMES: SettingNames = {
  subject: (input) => `input \`${input}\``,
  mention: (input) => `\`${input}\``,
};

const SUBJECT = '\uE010';
const MENTION = '\uE011';
const END = '\uE012';

/** A reference to setting `input` in an error text: the subject of the sentence, or a mention inside it. */
export function ref(input: string, subject = false): string {
  return `${subject ? SUBJECT : MENTION}${input}${END}`;
}

export function phrase(text: string, names: SettingNames): string {
  return text.replace(
    new RegExp(`([${SUBJECT}${MENTION}])([^${END}]*)${END}`, 'g'),
    (_, kind: string, input: string) => (kind === SUBJECT ? names.subject(input) : names.mention(input)),
  );
}

export class SettingError extends Error {
  readonly input: string;
  readonly value: string | undefined;
  readonly allowed: string | undefined;
  private readonly text: string;

  constructor(input: string, text: string, fields: { value?: string; allowed?: string } = {}) {
    super(phrase(text, ACTION_NAMES));
    this.name = 'SettingError';
    this.input = input;
    this.value = fields.value;
    this.allowed = fields.allowed;
    this.text = text;
  }

  /** The message in a front end's own names. */
  phrase(names: SettingNames): string {
    return phrase(this.text, names);
  }
}

export function isSettingError(e: unknown): e is SettingError {
  return e instanceof SettingError;
}
