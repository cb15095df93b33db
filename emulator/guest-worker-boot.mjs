// Entry of a threaded guest's worker (emulator/threaded-guest.ts starts it): loads TypeScript the
// way bin/tmemu.js does (a worker does not inherit the main thread's module hooks), then the
// worker proper, guest-worker.ts.
import { register } from "tsx/esm/api";

register();
await import("./guest-worker.ts");
