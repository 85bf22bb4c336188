#!/usr/bin/env node
// The allocsim command: the compiled CLI (npm install builds dist/ through the prepare script).
import "../dist/src/cli/main.js";
