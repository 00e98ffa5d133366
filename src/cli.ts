#!/usr/bin/env node
// autoheal-nexus: the operators' command line (the package's `bin`). It talks to a running service's
// admin API (AUTOHEAL_URL, ADMIN_TOKEN), prints tables for people and JSON for scripts (--json),
// follows a remediation until its verification ends, and exits non-zero with a clear message when
// something did not work. The command table, the API client and the rendering live in src/cli/.
import { main } from './cli/main.js';

main();
