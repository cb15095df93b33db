import json,re,sys
for name in sys.argv[1:]:
    log=open(f'logs/{name}.log').read()
    try: d=json.load(open(f'{name}.json'))
    except Exception as e: print(name,'no json',e); continue
    ts=lambda pat: float(re.search(r'^\s*([\d.]+) '+pat,log,re.M).group(1))
    wall=float(re.search(r'([\d.]+) s wall ([\d.]+) user ([\d.]+) sys',log).group(1))
    cpu=re.search(r'([\d.]+) s wall ([\d.]+) user ([\d.]+) sys',log)
    tboot=ts(r'\[tmemu\] booting')
    try: tset=ts(r'\[tmemu\] writing')
    except: tset=None
    tend=ts(r'tmemu run:')
    win=d['window']['seconds']; setup=d['setup']['seconds'] if d.get('setup') else 0
    print(f"== {name}: wall {wall:.1f} s (user {cpu.group(2)} sys {cpu.group(3)}), valid {d['valid']}")
    start = tset if tset is not None else tboot
    print(f"  start + images + MemTotal probe: {start:.1f} (probe {setup:.1f})")
    if tset is not None: print(f"  file set (host: seeded data, mke2fs): {tboot-tset:.1f}")
    print(f"  boot {len(d['guests'])} guest(s) + window-open stats: {tend-win-tboot:.1f}")
    print(f"  workload window: {win:.1f}")
    print(f"  summary, stats, teardown: {wall-tend:.1f}")
    for g in d['guests']:
        out=g['output']
        st=[(m.group(1),float(m.group(2))) for m in re.finditer(r'^phase: (\S+) ([\d.]+)$',out,re.M)]
        ph=', '.join(f"{a} {u-t:.1f}" for (a,t),(b,u) in zip(st,st[1:]))
        mt=re.findall(r'fill_ms=(\d+) verify_ms=(\d+)',out); sc=re.findall(r'setcheck: .*ms=(\d+)',out)
        print(f"    {g['name']}: {g['seconds']} s; phases: {ph}; memtouch fill/verify ms {mt}; setcheck ms {sc}")
