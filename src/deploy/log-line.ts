/**
 * Log lines that no file name, key or server message can turn into a workflow command. The runner reads every
 * stdout line that starts (after blanks) with `::` as a command (`::add-mask::`, `::stop-commands::`, ...) and
 * every line holding `##[` as an old-style one; it splits lines at `\n` and at a lone `\r`.
 * https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands
 */

/**
 * Control characters, the Unicode line breaks and the bidirectional controls, shown as escapes so a value stays
 * on one visible line and reads in the order it is stored (a right-to-left override would show
 * `invoice\u202etxt.exe` as `invoiceexe.txt`: https://trojansource.codes/).
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  const code = c.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** A value (file name, key, header, server message) shown on one line, control characters escaped. */
export function escapeText(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/** One log line that the runner prints as text and never runs as a command. */
export function safeLine(line: string): string {
  const text = escapeText(line).replace(/##\[/g, '#\\#[');
  return /^\s*::/.test(text) ? `\\${text}` : text;
}

/** Each line of `text` made safe; for our own multi-line text (a table) whose cells come from outside. */
export function safeLines(text: string): string {
  return text.split('\n').map(safeLine).join('\n');
}

/**
 * A file name as the file system holds it: valid UTF-8 as text, any other byte as `\xHH`, control characters
 * escaped. For names that cannot become an object key.
 */
export function describeBytes(name: Buffer): string {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  let i = 0;
  while (i < name.length) {
    const lead = name[i]!;
    const length =
      lead < 0x80 ? 1 : lead >= 0xf0 && lead < 0xf5 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 0;
    if (length > 0 && i + length <= name.length) {
      try {
        out += escapeText(decoder.decode(name.subarray(i, i + length)));
        i += length;
        continue;
      } catch {
        // not a UTF-8 sequence: the lead byte is shown on its own
      }
    }
    out += `\\x${lead.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}
