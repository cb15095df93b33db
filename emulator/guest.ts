/**
 * Guest: one real 32-bit Linux guest on v86, typed. The only module (with v86-internals.ts) that
 * touches v86. It boots a kernel + initramfs with disks, exposes the serial console, runs commands
 * through the guest agent (guest-images/init), traps port I/O for the hypervisor, gives
 * range-checked access to guest-physical memory, counts disk traffic per drive and hands out the
 * balloon device.
 */
import { createRequire } from "node:module";
import { randomBytes } from "node:crypto";
import { V86 } from "v86";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { GuestMemory } from "../hypervisor/guest-memory.ts";
import type { TrapRegisters } from "../hypervisor/tmem/hypercall.ts";
import { encodeRunRequest, MAX_REQUEST_BYTES, parseRunResult, READY_PATTERN, SHELL_REQUEST, type RunResult } from "./agent.ts";
import { ConsoleView, type Disposable } from "./console.ts";
import { countDiskTraffic, emptyDiskCounters, type DiskCounters } from "./disks.ts";
import { GuestBalloon } from "./balloon.ts";
import { guestMemoryOf } from "./memory.ts";
import { registerPciDevice } from "./tmem-pci.ts";
import { TrapTimer, type TrapWaitCounts } from "./trap-timer.ts";
import type { PciDeviceSpec } from "../hypervisor/tmem/pci.ts";
import { checkGuestMemoryMib, checkInitrdSize } from "./memory-size.ts";
import { internalsOf, REG, registerFile, type V86Cpu } from "./v86-internals.ts";
import { captureMachineState, diskPickupCommand, prepareDrives, restoreMachineState, type DriveName } from "./snapshot.ts";

export type { Disposable } from "./console.ts";
export { INITRD_LOAD_ADDRESS, minimumMemoryMib, RESERVED_TOP_MIB } from "./memory-size.ts";

export interface GuestImages {
  bzImage: Uint8Array;
  initrd: Uint8Array;
  bios: Uint8Array;
  vgaBios?: Uint8Array;
}

export interface GuestBootOptions {
  images: GuestImages;
  memoryMib: number;
  /** Shown in errors and tables. */
  name?: string;
  /** Appended to the kernel command line. */
  kernelArgs?: readonly string[];
  /** ext4 image mounted on /data (hda). Written in place. */
  dataDisk?: Uint8Array;
  /** Swap image (hdb), activated at boot. */
  swapDisk?: Uint8Array;
  /** Offer the virtio balloon device (default true). */
  balloon?: boolean;
  bootTimeoutMs?: number;
  /** Called with every console chunk as it arrives (for live echo). */
  onConsole?: (text: string) => void;
  /** Called inside the emulator-loaded event, before the CPU runs: register port traps here. */
  beforeStart?: (guest: Guest) => void;
  /**
   * Construct the machine so that it can be saved and restored (emulator/snapshot.ts): always with
   * both IDE drives, those without a disk hidden from the kernel. Implied by `restore`.
   */
  snapshotable?: boolean;
  /** Start from a machine state (Guest.saveState) instead of booting the kernel. */
  restore?: GuestRestore;
}

/** A machine state to start from, as Guest.saveState took it (without the disks' contents). */
export interface GuestRestore {
  /** A promise: the emulator is constructed (and beforeStart runs) while the state is still on its way (a migration). */
  state: Uint8Array | Promise<Uint8Array>;
  kernelRelease: string;
  /**
   * The state is a boot snapshot taken before any disk was used: the guest takes up this run's
   * disks (snapshot.ts diskPickupCommand) and activates them as init does. False for a state whose
   * kernel already uses its disks (then dataDisk and swapDisk must be the disks saved with it).
   */
  pickUpDisks: boolean;
  /** With pickUpDisks: the disks the snapshot's kernel already uses (snapshot.ts diskPickupCommand); the others are rescanned. */
  knownDisks?: { data: boolean; swap: boolean };
}

export const BASE_KERNEL_ARGS = ["console=ttyS0", "tsc=reliable", "mitigations=off", "random.trust_cpu=on", "loglevel=4"];

const MIB = 1024 * 1024;

export class Guest extends ConsoleView implements Disposable {
  readonly name: string;
  readonly memoryMib: number;
  kernelRelease = "";
  readonly disks: { data: DiskCounters; swap: DiskCounters } = { data: emptyDiskCounters(), swap: emptyDiskCounters() };

  private readonly emulator: V86;
  private cpu: V86Cpu | undefined;
  private balloonHandle: GuestBalloon | undefined;
  private readonly trapTimer = new TrapTimer();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** The disks the guest runs on (what v86 reads and writes in place), for saveDisks. */
  private dataBuffer: ArrayBuffer | undefined;
  private swapBuffer: ArrayBuffer | undefined;
  /** The request id of the command sent and not answered yet. */
  private running: string | undefined;

  private constructor(emulator: V86, opts: GuestBootOptions) {
    super(opts.name ?? "guest", opts.onConsole);
    this.emulator = emulator;
    this.name = opts.name ?? "guest";
    this.memoryMib = opts.memoryMib;
  }

  static async boot(opts: GuestBootOptions): Promise<Guest> {
    // The CLI checked --memory-mib before resolving the images; this guards every other caller.
    checkGuestMemoryMib(opts.memoryMib);
    checkInitrdSize(opts.images.initrd.byteLength);
    const require = createRequire(import.meta.url);
    const snapshotable = opts.snapshotable === true || opts.restore !== undefined;
    const hda = opts.dataDisk ?? (opts.swapDisk || snapshotable ? new Uint8Array(MIB) : undefined);
    const hdb = opts.swapDisk ?? (snapshotable ? new Uint8Array(MIB) : undefined);
    const hdaBuffer = hda ? toArrayBuffer(hda) : undefined;
    const hdbBuffer = hdb ? toArrayBuffer(hdb) : undefined;
    const emulator = new V86({
      wasm_path: require.resolve("v86/build/v86.wasm"),
      memory_size: opts.memoryMib * MIB,
      vga_memory_size: 2 * MIB,
      bios: { buffer: toArrayBuffer(opts.images.bios) },
      ...(opts.images.vgaBios ? { vga_bios: { buffer: toArrayBuffer(opts.images.vgaBios) } } : {}),
      bzimage: { buffer: toArrayBuffer(opts.images.bzImage) },
      initrd: { buffer: toArrayBuffer(opts.images.initrd) },
      cmdline: [...BASE_KERNEL_ARGS, ...(opts.kernelArgs ?? [])].join(" "),
      ...(hdaBuffer ? { hda: { buffer: hdaBuffer } } : {}),
      ...(hdbBuffer ? { hdb: { buffer: hdbBuffer } } : {}),
      virtio_balloon: opts.balloon ?? true,
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    } as ConstructorParameters<typeof V86>[0]);
    const guest = new Guest(emulator, opts);
    try {
      await new Promise<void>((resolve, reject) => {
        emulator.add_listener("emulator-loaded", async () => {
          try {
            guest.attach(Boolean(hda), Boolean(opts.swapDisk));
            const keep: Record<DriveName, boolean> = { master: Boolean(opts.dataDisk), slave: Boolean(opts.swapDisk) };
            const drives = snapshotable ? prepareDrives(emulator, keep) : undefined;
            opts.beforeStart?.(guest);
            if (opts.restore && drives) {
              restoreMachineState(emulator, await opts.restore.state, drives, {
                ...(opts.dataDisk && hdaBuffer ? { master: hdaBuffer } : {}),
                ...(opts.swapDisk && hdbBuffer ? { slave: hdbBuffer } : {}),
              });
            }
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        });
      });
      emulator.add_listener("serial0-output-byte", (byte: number) => guest.console.write(byte));
      if (opts.dataDisk) guest.dataBuffer = hdaBuffer;
      if (opts.swapDisk) guest.swapBuffer = hdbBuffer;
      await emulator.run();
      if (opts.restore) {
        guest.kernelRelease = opts.restore.kernelRelease;
        const disks = { data: Boolean(opts.dataDisk), swap: Boolean(opts.swapDisk) };
        const pickup = opts.restore.pickUpDisks ? diskPickupCommand(disks, opts.restore.knownDisks) : "";
        if (pickup) {
          const r = await guest.run(pickup, { timeoutMs: opts.bootTimeoutMs ?? 120_000 });
          if (r.exitCode !== 0) {
            throw new TmemuError("BOOT_FAILED", `${guest.name}: the guest started from the boot snapshot could not take up its disks`, `boot cold with --cold-boot; the guest said:\n${r.output.trim().split("\n").slice(-5).join("\n")}`);
          }
        }
        return guest;
      }
      const m = await guest.waitFor(READY_PATTERN, opts.bootTimeoutMs ?? 120_000, "boot");
      guest.kernelRelease = m[1] ?? "";
      return guest;
    } catch (err) {
      await guest.dispose();
      throw err;
    }
  }

  private attach(hasData: boolean, hasSwap: boolean): void {
    this.cpu = internalsOf(this.emulator);
    const dev = this.cpu.devices.virtio_balloon;
    if (dev) this.balloonHandle = new GuestBalloon(this.cpu, dev);
    const primary = this.cpu.devices.ide?.primary;
    if (hasData && primary?.master.buffer) countDiskTraffic(primary.master.buffer, this.disks.data);
    if (hasSwap && primary?.slave.buffer) countDiskTraffic(primary.slave.buffer, this.disks.swap);
  }

  /** Bytes to the guest's serial port, as typed. */
  sendInput(text: string): void {
    this.emulator.serial0_send(text);
  }

  /**
   * Runs `command` with the guest's busybox sh; resolves with its output and exit code (a non-zero
   * exit is a result, not an error). Commands run one at a time. A timeout leaves the guest in an
   * unknown state: it is marked gone and later calls fail at once.
   */
  run(command: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const request = encodeRunRequest(`${Date.now().toString(36)}${randomBytes(4).toString("hex")}`, command);
    if (request.length > MAX_REQUEST_BYTES) {
      return Promise.reject(
        new TmemuError("BAD_INPUT", `command is ${Buffer.byteLength(command, "utf8")} bytes; the guest agent takes at most about ${Math.floor((MAX_REQUEST_BYTES * 3) / 4) - 40}`, "put long scripts in a file on the data disk (--files DIR) and run that"),
      );
    }
    const id = request.split(" ")[1] ?? "";
    const job = this.queue.then(async () => {
      if (this.console.dead) throw this.console.dead;
      const answer = this.console.waitForRun(id, opts.timeoutMs ?? 600_000, `command \`${abbreviate(command)}\``);
      this.emulator.serial0_send(request);
      this.running = id;
      try {
        return await answer;
      } catch (err) {
        if (err instanceof TmemuError && err.code === "TIMEOUT") this.console.fail(err);
        throw err;
      } finally {
        this.running = undefined;
      }
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** Like `run`, but a non-zero exit code is a GUEST_COMMAND_FAILED error carrying the output. */
  async runChecked(command: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.run(command, opts);
    if (r.exitCode !== 0) {
      throw new TmemuError("GUEST_COMMAND_FAILED", `${this.name}: \`${abbreviate(command)}\` exited with ${r.exitCode}`, r.output.trim().split("\n").slice(-5).join("\n"));
    }
    return r.output;
  }

  /** Replaces the agent with an interactive shell on the serial console. */
  startShell(): void {
    this.emulator.serial0_send(SHELL_REQUEST);
  }

  /**
   * Traps 32-bit `out` to `port`. The handler sees and may change the guest's registers; it must
   * not throw (a throw here would unwind through the emulated CPU).
   */
  registerPortTrap(port: number, handler: (regs: TrapRegisters) => void): Disposable {
    const cpu = this.requireCpu();
    const regs = registersOf(registerFile(cpu));
    const device = { name: `tmemu-port-${port.toString(16)}` };
    const trap = () => handler(regs);
    cpu.io.register_write(port, device, undefined, undefined, () => this.trapTimer.run(trap));
    return { dispose: () => cpu.io.register_write(port, device, undefined, undefined, () => undefined) };
  }

  /**
   * How long this guest's vCPU has waited on its port traps, cumulative (emulator/trap-timer.ts:
   * one trap in 16 timed). For a guest in a worker thread this is measured there, crossing included.
   */
  trapWait(): TrapWaitCounts {
    return this.trapTimer.counts();
  }

  /** Plugs a PCI function with no BARs into bus 0 (emulator/tmem-pci.ts); call before the CPU runs. */
  registerPciDevice(spec: PciDeviceSpec): void {
    registerPciDevice(this.requireCpu(), spec);
  }

  /** Guest-physical memory, 4 KiB pages, every access range-checked. */
  get memory(): GuestMemory {
    return guestMemoryOf(this.requireCpu());
  }

  /** The virtio balloon, when the guest was booted with one (the default). */
  get balloon(): GuestBalloon | undefined {
    return this.balloonHandle;
  }

  /** Stops the vCPU (the guest's time stops with it); `resume` starts it again. */
  async pause(): Promise<void> {
    await this.emulator.stop();
  }

  async resume(): Promise<void> {
    if (this.disposed) throw new TmemuError("GUEST_GONE", `${this.name} was shut down`);
    await this.emulator.run();
  }

  /**
   * The machine's state without the disks' contents (emulator/snapshot.ts), taken with the vCPU
   * stopped; the guest stays paused (call `resume` to go on). Needs a snapshotable guest.
   */
  async saveState(): Promise<Uint8Array> {
    await this.emulator.stop();
    return captureMachineState(this.emulator);
  }

  /** Copies of the disks the guest runs on (data: hda, swap: hdb), as they are now. */
  saveDisks(): { data?: Uint8Array; swap?: Uint8Array } {
    return {
      ...(this.dataBuffer ? { data: new Uint8Array(this.dataBuffer.slice(0)) } : {}),
      ...(this.swapBuffer ? { swap: new Uint8Array(this.swapBuffer.slice(0)) } : {}),
    };
  }

  /**
   * Waits for the end of a command that was already running when this guest's state was saved
   * (its request id): the output it writes from now on and its exit code.
   */
  resumeRun(id: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    if (!/^[A-Za-z0-9]+$/.test(id)) return Promise.reject(new TmemuError("BAD_INPUT", `not a command id: ${JSON.stringify(id)}`));
    // The BEGIN marker went out before the save: this console starts inside the answer.
    const job = this.queue.then(() =>
      this.waitUntil((text) => parseRunResult(`TMEMU-BEGIN ${id}\n${text}`, id), opts.timeoutMs ?? 600_000, `command ${id}`, 0),
    );
    this.queue = job.catch(() => undefined);
    return job;
  }

  /** The id of the command running now (sent and not answered yet), for a save while it runs. */
  get runningCommandId(): string | undefined {
    return this.running;
  }

  get isAlive(): boolean {
    return !this.console.dead && !this.disposed;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.console.fail(new TmemuError("GUEST_GONE", `${this.name} was shut down`));
    this.console.clearListeners();
    await this.emulator.destroy();
  }

  private requireCpu(): V86Cpu {
    if (!this.cpu) throw new TmemuError("GUEST_GONE", `${this.name} is not running`);
    return this.cpu;
  }
}

function registersOf(file: () => Int32Array): TrapRegisters {
  const reg = (i: number) => ({
    get: () => (file()[i] ?? 0) >>> 0,
    set: (v: number) => {
      file()[i] = v | 0;
    },
  });
  return Object.defineProperties({} as TrapRegisters, {
    eax: reg(REG.EAX),
    ebx: reg(REG.EBX),
    ecx: reg(REG.ECX),
    edx: reg(REG.EDX),
    esi: reg(REG.ESI),
    edi: reg(REG.EDI),
  });
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  return bytes.slice().buffer;
}

function abbreviate(command: string): string {
  const one = command.replace(/\s+/g, " ").trim();
  return one.length > 60 ? `${one.slice(0, 57)}...` : one;
}
