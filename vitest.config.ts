import { defineConfig } from "vitest/config";

// Two projects: `unit` is pure and fast; `integration` boots real guests and needs the guest images,
// which test/integration/global-setup.ts builds (or finds in the cache) before any test runs.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/integration/**"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          testTimeout: 300_000,
          hookTimeout: 3_600_000,
          // Guests are heavy (one emulated CPU each); run integration files one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
