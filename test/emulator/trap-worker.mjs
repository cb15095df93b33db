// Test fixture entry: a worker thread that plays a guest's vCPU (trap-worker-fixture.ts).
import { register } from "tsx/esm/api";

register();
await import("./trap-worker-fixture.ts");
