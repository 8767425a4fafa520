#!/usr/bin/env node
// Entry point: load the compiled CLI and hand over. Everything else lives in dist/.
import { main } from '../dist/main.js';

process.exitCode = await main(process.argv.slice(2));
