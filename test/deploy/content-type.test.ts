// Content-Types come from mime-db (through mime-types), with charset=utf-8 on text and checksum lists as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeFor } from '../../src/deploy/content-type.ts';

test('a Content-Type per file name', () => {
  const table: Array<[string, string]> = [
    ['index.html', 'text/html; charset=utf-8'],
    ['site/app.3f9a.js', 'text/javascript; charset=utf-8'],
    ['lib.mjs', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
    ['data.json', 'application/json; charset=utf-8'],
    ['app.js.map', 'application/json; charset=utf-8'],
    ['logo.svg', 'image/svg+xml; charset=utf-8'],
    ['feed.xml', 'application/xml; charset=utf-8'],
    ['atom.atom', 'application/atom+xml; charset=utf-8'],
    ['manifest.webmanifest', 'application/manifest+json; charset=utf-8'],
    ['robots.txt', 'text/plain; charset=utf-8'],
    ['README.md', 'text/markdown; charset=utf-8'],
    ['SHA256SUMS', 'text/plain; charset=utf-8'],
    ['SHA512SUMS', 'text/plain; charset=utf-8'],
    ['MD5SUMS', 'text/plain; charset=utf-8'],
    ['tool-1.2.3.tar.gz.sha256', 'text/plain; charset=utf-8'],
    ['tool.zip.sha512', 'text/plain; charset=utf-8'],
    ['tool.zip.md5', 'text/plain; charset=utf-8'],
    ['tool.zip.asc', 'text/plain; charset=utf-8'],
    ['photo.JPG', 'image/jpeg'],
    ['image.avif', 'image/avif'],
    ['font.woff2', 'font/woff2'],
    ['module.wasm', 'application/wasm'],
    ['tool-1.2.3.tar.gz', 'application/gzip'],
    ['tool.zip', 'application/zip'],
    ['doc.pdf', 'application/pdf'],
    ['clip.mp4', 'video/mp4'],
    ['Makefile', 'application/octet-stream'],
    ['blob.unknownext', 'application/octet-stream'],
  ];
  for (const [name, type] of table) assert.equal(contentTypeFor(name), type, name);
});
