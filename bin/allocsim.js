#!/usr/bin/env node
// The allocsim command: the compiled CLI (npm install builds dist/ through the prepare script).
// Ctrl-C while the modules load: the same one line and exit code as later (main.ts replaces this handler).
process.on('SIGINT', () => {
  process.stderr.write('allocsim: interrupted (Ctrl-C); no output was written\n');
  process.exit(130);
});
await import('../dist/src/cli/main.js');
