#!/usr/bin/env node
// Entry point: load the compiled CLI and hand over. Everything else lives in dist/.
import { run } from '../dist/entry.js';

process.exitCode = await run(process.argv.slice(2));
