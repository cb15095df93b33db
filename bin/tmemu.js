#!/usr/bin/env node
// The tmemu command: runs cli/main.ts through tsx, so there is no separate build step.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
