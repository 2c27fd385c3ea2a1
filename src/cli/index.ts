#!/usr/bin/env node
/** Entry of the `oss-resumable-upload` command. */
import { startCli } from './entry.ts';

startCli(process.argv.slice(2));
