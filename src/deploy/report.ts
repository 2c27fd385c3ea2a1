/** What a person sees: throttled progress lines, one line per file, the summary and the outputs. */
import { relative } from 'node:path';
import type { ProgressEvent, UploadOutcome, UploadResult } from '../engine/index.ts';
import type { CdnRefreshReport } from './cdn-refresh.ts';
import type { CleanupResult } from './cleanup.ts';
import { OUTPUT } from './constants.ts';
import { finalState, headersUpdated } from './ledger.ts';
import { escapeText } from './log-line.ts';
import { formatBytes } from './size.ts';

/** Turns the engine's progress facts into at most one line per file every `intervalMs`, plus one at 100% for files that had one. */
export class ProgressReporter {
  private readonly last = new Map<
    string,
    { at: number; started: number; startBytes: number; wrote: boolean }
  >();
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly write: (line: string) => void;

  constructor(opts: { intervalMs?: number; now?: () => number; write: (line: string) => void }) {
    this.intervalMs = opts.intervalMs ?? 5000;
    this.now = opts.now ?? Date.now;
    this.write = opts.write;
  }

  readonly onProgress = (e: ProgressEvent): void => {
    const t = this.now();
    let seen = this.last.get(e.key);
    if (!seen) {
      seen = { at: t, started: t, startBytes: e.bytesDone, wrote: false };
      this.last.set(e.key, seen);
      if (e.bytesResumed > 0) {
        this.write(
          `${e.key}: resumed ${formatBytes(e.bytesResumed)} of ${formatBytes(e.bytesTotal)} from checkpoint`,
        );
      }
      return;
    }
    const finished = e.bytesDone >= e.bytesTotal && e.partsDone >= e.partsTotal;
    if (finished) {
      this.last.delete(e.key);
      // a file that ended before its first progress line gets only its result line
      if (!seen.wrote) return;
    } else if (t - seen.at < this.intervalMs) return;
    seen.at = t;
    seen.wrote = true;
    this.write(progressLine(e, (t - seen.started) / 1000, e.bytesDone - seen.startBytes));
  };
}

/**
 * The one line that says how a file ended: `uploaded key (96.0 MiB in 0.8s, 52.0 MiB resumed, verified by crc64)`,
 * or `unchanged key (...)` when nothing had to be sent.
 */
export function resultLine(r: UploadResult): string {
  if (headersUpdated(r)) {
    return `headers updated ${r.key} (${formatBytes(r.size)}: same bytes, new headers; nothing re-sent)`;
  }
  if (r.unchanged) {
    return `unchanged ${r.key} (${formatBytes(r.size)}: same size and CRC-64 as the stored object; nothing sent)`;
  }
  const resumed = r.bytesResumed > 0 ? `, ${formatBytes(r.bytesResumed)} resumed` : '';
  return `uploaded ${r.key} (${formatBytes(r.size)} in ${r.seconds.toFixed(1)}s${resumed}, verified by ${r.verified})`;
}

/** `key: 42.0% 420.0 MiB / 1000.0 MiB, 83.1 MB/s, ETA 7s (resumed 100.0 MiB)` */
export function progressLine(e: ProgressEvent, seconds: number, bytesThisRun: number): string {
  const pct = e.bytesTotal === 0 ? 100 : (e.bytesDone / e.bytesTotal) * 100;
  // a retried request takes its bytes back, so this run's count can dip below where the line started
  const rate = seconds > 0 ? Math.max(0, bytesThisRun) / seconds : 0;
  const eta = rate > 0 ? `, ETA ${Math.ceil((e.bytesTotal - e.bytesDone) / rate)}s` : '';
  const resumed = e.bytesResumed > 0 ? ` (resumed ${formatBytes(e.bytesResumed)})` : '';
  return `${e.key}: ${pct.toFixed(1)}% ${formatBytes(e.bytesDone)} / ${formatBytes(e.bytesTotal)}, ${(rate / 1e6).toFixed(1)} MB/s${eta}${resumed}`;
}

export interface Totals {
  uploaded: number;
  /** Already stored with the same size and CRC-64: nothing sent. */
  skipped: number;
  /** Same bytes already stored; only the headers were rewritten in place. */
  updated: number;
  /** The cleanup step of a sharded run: stored by the shards with the planned size, CRC-64 and headers. */
  verified: number;
  failed: number;
  bytesUploaded: number;
  bytesResumed: number;
  keys: string[];
  urls: string[];
  /** Uploaded now or with headers rewritten (with dry-run: would be): what a CDN must fetch again. */
  changedKeys: string[];
}

export function totals(outcomes: readonly UploadOutcome[], urlOf: (key: string) => string): Totals {
  const ok = outcomes.filter((o): o is Extract<UploadOutcome, { ok: true }> => o.ok);
  const count = (state: ReturnType<typeof finalState>): number =>
    ok.filter((o) => finalState(o) === state).length;
  return {
    uploaded: count('uploaded'),
    skipped: count('unchanged'),
    updated: count('headers updated'),
    verified: 0,
    failed: outcomes.length - ok.length,
    bytesUploaded: ok.reduce((s, o) => s + o.result.bytesSent, 0),
    bytesResumed: ok.reduce((s, o) => s + o.result.bytesResumed, 0),
    // every object the step stands behind, sent now or already there
    keys: ok.map((o) => o.result.key),
    urls: ok.map((o) => urlOf(o.result.key)),
    changedKeys: ok
      .filter((o) => finalState(o) === 'uploaded' || finalState(o) === 'headers updated')
      .map((o) => o.result.key),
  };
}

/** Plain-text table for the log. */
export function resultTable(outcomes: readonly UploadOutcome[]): string {
  const rows = outcomes.map((o) =>
    o.ok
      ? [
          escapeText(o.result.key),
          formatBytes(o.result.size),
          `${o.result.seconds.toFixed(1)}s`,
          formatBytes(o.result.bytesResumed),
          finalState(o) === 'uploaded' ? `ok (${o.result.verified})` : finalState(o),
        ]
      : [escapeText(o.item.key), '', '', '', 'FAILED'],
  );
  const head = ['key', 'size', 'time', 'resumed', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/** The step outputs (the command line prints the same facts). */
export function outputValues(t: Totals, cleanup: CleanupResult, cdnRefreshed = 0): Record<string, string> {
  return {
    [OUTPUT.uploadedCount]: String(t.uploaded),
    [OUTPUT.skippedCount]: String(t.skipped),
    [OUTPUT.verifiedCount]: String(t.verified),
    [OUTPUT.updatedCount]: String(t.updated),
    [OUTPUT.bytesUploaded]: String(t.bytesUploaded),
    [OUTPUT.bytesResumed]: String(t.bytesResumed),
    [OUTPUT.keys]: JSON.stringify(t.keys),
    [OUTPUT.urls]: JSON.stringify(t.urls),
    [OUTPUT.deletedCount]: String(cleanup.deleted),
    [OUTPUT.orphans]: JSON.stringify(cleanup.orphans),
    [OUTPUT.abortedUploads]: String(cleanup.aborted),
    [OUTPUT.orphansKeptCount]: String(cleanup.keptForAge.length),
    [OUTPUT.changedKeys]: JSON.stringify(t.changedKeys),
    [OUTPUT.deletedKeys]: JSON.stringify(cleanup.deletedKeys),
    [OUTPUT.cdnRefreshedCount]: String(cdnRefreshed),
  };
}

/** What the cleanup did (or, with dry-run, would do), for the job summary. */
export function cleanupLines(c: CleanupResult): string[] {
  const lines: string[] = [];
  const would = c.dryRun ? 'would be ' : '';
  const listed = (keys: readonly string[]): string =>
    keys.length === 0
      ? ''
      : `: ${keys
          .slice(0, 20)
          .map((k) => `\`${k}\``)
          .join(', ')}${keys.length > 20 ? `, and ${keys.length - 20} more` : ''}`;
  if (c.orphansSkipped) lines.push(`Orphans not deleted: ${c.orphansSkipped}.`);
  else if (c.orphans.length > 0)
    lines.push(`${c.orphans.length} orphan(s) ${would}deleted${listed(c.orphans)}`);
  if (c.keptForAge.length > 0)
    lines.push(
      `${c.keptForAge.length} orphan(s) kept for their age (younger than delete-orphans-min-age)${listed(c.keptForAge)}`,
    );
  if (c.stale.length > 0)
    lines.push(
      `${c.stale.length} stale upload(s) ${would}aborted${listed(c.stale.map((u) => u.key))}${c.abortFailures.length ? ` (${c.abortFailures.length} could not be aborted)` : ''}`,
    );
  return lines;
}

/** Rows in the summary; the rest are counted. 300 rows stay far under GitHub's 1 MiB summary limit. */
export const SUMMARY_ROWS = 300;

export interface SummaryFacts {
  bucket: string;
  destination: string;
  /** File paths are shown relative to this. */
  cwd: string;
  dryRun: boolean;
  rows: readonly SummaryRow[];
  totals: Totals;
  cleanup: CleanupResult;
  /** Why the run stopped early, when it did. */
  stopped?: string | undefined;
  /** publish-last files not sent because an earlier file failed. */
  heldBack?: readonly string[] | undefined;
  cdn?: CdnRefreshReport | undefined;
  /** `shard 2/4` in a matrix: the totals and rows are that job's share. */
  shard?: string | undefined;
}

/** The step's failure when only the CDN refresh failed: the deploy itself stands. */
export function cdnFailure(error: string): string {
  return `the objects are uploaded and stored, but ${error}; refresh the URLs by hand or re-run the step (unchanged files are not sent again)`;
}

/** What the CDN refresh did, for the summary. */
export function cdnLines(c: CdnRefreshReport | undefined): string[] {
  if (!c) return [];
  const name = c.product.toUpperCase();
  if (c.error) return [`${name} refresh failed: ${c.error}`];
  if (c.dryRun) return [`${c.urls.length} URL(s) would be refreshed on ${name}`];
  return [`${c.refreshed} URL(s) refreshed on ${name} in ${c.batches} request(s)`];
}

export interface SummaryRow {
  file: string;
  key: string;
  size: number;
  result: string;
  seconds?: number | undefined;
  resumed?: number | undefined;
}

/**
 * The job summary as HTML: where the objects went, the totals, a table of at most {@link SUMMARY_ROWS} rows
 * (failures first) with every cell escaped and closed, and what the cleanup did.
 */
export function summaryHtml(f: SummaryFacts): string {
  const t = f.totals;
  const where = `oss://${f.bucket}/${f.destination}`;
  const head = ['File', 'Key', 'Size', 'Result', 'Time', 'Resumed'];
  const failedFirst = [...f.rows].sort((a, b) => Number(isFailure(b)) - Number(isFailure(a)));
  const shown = failedFirst.slice(0, SUMMARY_ROWS);
  const cell = (tag: 'td' | 'th', text: string): string => `<${tag}>${htmlText(text)}</${tag}>`;
  const row = (r: SummaryRow): string =>
    `<tr>${[
      relative(f.cwd, r.file) || r.file,
      r.key,
      formatBytes(r.size),
      r.result,
      r.seconds === undefined ? '' : `${r.seconds.toFixed(1)}s`,
      r.resumed ? formatBytes(r.resumed) : '',
    ]
      .map((c) => cell('td', c))
      .join('')}</tr>`;
  const rest = f.rows.length - shown.length;
  const lines = [
    `<h3>${f.dryRun ? 'OSS deploy plan (dry run: nothing changed)' : 'OSS upload'}${f.shard ? `, ${htmlText(f.shard)}` : ''}</h3>`,
    `<p>${htmlText(`To ${where}${f.shard ? ` (${f.shard})` : ''}: ${totalsText(t, f.dryRun)}`)}</p>`,
    ...(f.stopped ? [`<p><strong>${htmlText(`Stopped: ${f.stopped}`)}</strong></p>`] : []),
    `<table><tr>${head.map((h) => cell('th', h)).join('')}</tr>`,
    ...shown.map(row),
    '</table>',
    ...(rest > 0 ? [`<p>${htmlText(`and ${rest} more file(s), counted in the totals above`)}</p>`] : []),
  ];
  const cleanup = [
    ...(f.heldBack?.length
      ? [`${f.heldBack.length} file(s) published last were held back because an earlier file failed`]
      : []),
    ...cleanupLines(f.cleanup),
    ...cdnLines(f.cdn),
  ];
  if (cleanup.length > 0) lines.push(`<ul>${cleanup.map((l) => `<li>${htmlText(l)}</li>`).join('')}</ul>`);
  return `${lines.join('\n')}\n`;
}

/** A dry run's row for a file whose stored copy could not be read: nothing was tried, so nothing failed. */
export const NOT_CHECKED = 'could not be checked';

function isFailure(r: SummaryRow): boolean {
  return r.result === 'failed' || r.result === NOT_CHECKED;
}

/**
 * Why the step fails when files did: `2 of 5 upload(s) failed:` and the first ten reasons; for a dry run, which
 * sends nothing, `dry run: 2 of 5 file(s) could not be checked (nothing was changed):`.
 */
export function failureText(r: {
  dryRun: boolean;
  totals: Totals;
  files: readonly unknown[];
  failures: readonly string[];
}): string {
  const shown = r.failures.slice(0, 10);
  const more = r.failures.length - shown.length;
  const head = r.dryRun
    ? `dry run: ${r.totals.failed} of ${r.files.length} file(s) ${NOT_CHECKED} (nothing was changed)`
    : `${r.totals.failed} of ${r.files.length} upload(s) failed`;
  return `${head}:\n${shown.join('\n')}${more > 0 ? `\nand ${more} more (see the log)` : ''}`;
}

/** `3 uploaded, 2 unchanged, 1 failed; 1.0 MiB sent, 0 B resumed` or, dry, `3 would be uploaded, ...` */
export function totalsText(t: Totals, dryRun: boolean): string {
  // the cleanup step of a sharded run checks the keys the shards sent before it sends its own
  const verified = t.verified ? `${t.verified} verified, ` : '';
  if (dryRun)
    return `${verified}${t.uploaded} would be uploaded, ${t.updated} would get new headers, ${t.skipped} unchanged${t.failed ? `, ${t.failed} ${NOT_CHECKED}` : ''}`;
  return `${verified}${t.uploaded} uploaded, ${t.skipped} unchanged, ${t.updated ? `${t.updated} with headers updated, ` : ''}${t.failed} failed; ${formatBytes(t.bytesUploaded)} sent, ${formatBytes(t.bytesResumed)} resumed`;
}

/** The summary is HTML: a file named `<img src=x>` is shown, never rendered. */
function htmlText(text: string): string {
  return escapeText(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
