/**
 * Kconfig fragment handling: parse a fragment (CONFIG_X=y / =m / ="str" / =N and
 * "# CONFIG_X is not set"), and find the options Kconfig silently dropped or changed after
 * `olddefconfig` (scripts/kconfig/merge_config.sh warns about some of these; we fail on all).
 */

export type KconfigValue = string; // "y", "m", "n", a number or a quoted string, as written

export function parseKconfig(text: string): Map<string, KconfigValue> {
  const out = new Map<string, KconfigValue>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set?.[1] && set[2] !== undefined) {
      out.set(set[1], set[2]);
      continue;
    }
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset?.[1]) out.set(unset[1], "n");
  }
  return out;
}

export interface KconfigMismatch {
  option: string;
  wanted: KconfigValue;
  got: KconfigValue;
}

/** Every option the fragment asks for, compared with the final .config. */
export function checkKconfig(fragment: string, finalConfig: string): KconfigMismatch[] {
  const want = parseKconfig(fragment);
  const got = parseKconfig(finalConfig);
  const bad: KconfigMismatch[] = [];
  for (const [option, wanted] of want) {
    const actual = got.get(option) ?? "n";
    if (actual !== wanted) bad.push({ option, wanted, got: actual });
  }
  return bad;
}
