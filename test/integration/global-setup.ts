/**
 * Builds the guest images (or finds them in the cache) once, before any integration test runs,
 * and hands their paths to the tests. A cold first run builds a Linux kernel: about 6-8 minutes on
 * 2 cores. Progress goes to stderr.
 */
import type { TestProject } from "vitest/node";
import { ensureImages, type ImageSet } from "../../guest-images/index.ts";
import { StderrProgress } from "../../guest-images/progress.ts";

declare module "vitest" {
  export interface ProvidedContext {
    images: ImageSet;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const images = await ensureImages({ progress: new StderrProgress() });
  project.provide("images", images);
}
