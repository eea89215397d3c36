#!/usr/bin/env bash
# What llvmpipe made of one conv2d kernel, on this CPU: samples it with perf while `cargo bench --bench conv2d` runs
# it, dumps the JIT code around the hottest address with gdb, counts the hot loop's instructions by kind, and runs
# that loop through llvm-mca's models of an Intel and an AMD core (the README's "Why an Intel CPU is slower" was
# measured this way).
#
#   tools/jit_profile.sh "enc 128ch 24x48" fwd          # a row filter of benches/conv2d.rs and its pass
#   MCA=llvm-mca-19 CPUS="sapphirerapids znver4" tools/jit_profile.sh "dec 16->16 192x384" bwd_w
#
# Needs perf (linux-perf), gdb, python3 and an llvm-mca that knows the CPUs (Debian's llvm-19 package); lavapipe as
# the default adapter. Output goes to $OUT (default target/jit_profile): the dump (.dis), sampled addresses (.ips),
# the loop as assembly (.s) and llvm-mca's reports. Nothing here is timed against a bound: it explains, it does not
# test.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:?usage: tools/jit_profile.sh "ROW FILTER" PASS}
pass=${2:?usage: tools/jit_profile.sh "ROW FILTER" PASS}
MCA=${MCA:-llvm-mca-19}
CPUS=${CPUS:-sapphirerapids znver4}
OUT=${OUT:-target/jit_profile}
mkdir -p "$OUT"
for tool in perf gdb python3 "$MCA"; do command -v "$tool" >/dev/null || { echo "jit_profile: $tool not found (see the header)"; exit 1; }; done
cargo bench --bench conv2d --no-run 2>&1 | grep -q Executable || true
bin=$(ls -t target/release/deps/conv2d-* | grep -v '\.d$' | head -1)

# Run the one row for long enough to sample it after its compile.
FLUKE_BENCH_SECS=40 XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} "$bin" $rows "$pass" Auto >"$OUT/bench.txt" 2>&1 &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT
sleep 15
pid=$bench
perf record -e cpu-clock -F 2000 -p "$pid" -o "$OUT/perf.data" -- sleep 6 >/dev/null 2>&1
perf script -i "$OUT/perf.data" -F ip 2>/dev/null | awk '{print $1}' | sort | uniq -c | sort -rn >"$OUT/ips.txt"
hot=$(head -1 "$OUT/ips.txt" | awk '{print $2}')
# The JIT code is an anonymous executable mapping: dump the one holding the hottest address.
range=$(python3 -c '
import sys
h = int(sys.argv[1], 16)
for line in open(sys.argv[2]):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if lo <= h < hi:
        print(lo, hi)
        break' "$hot" "/proc/$pid/maps")
read -r lo hi <<<"$range"
n=$(( (hi - lo) / 2 ))
gdb -p "$pid" -batch -ex "x/${n}i $(printf 0x%x "$lo")" 2>/dev/null | grep '^ *0x' >"$OUT/kernel.dis" || true
kill $bench 2>/dev/null || true

python3 - "$OUT" "$MCA" $CPUS <<'PY'
import collections, re, subprocess, sys
out, mca, cpus = sys.argv[1], sys.argv[2], sys.argv[3:]
ins, at = [], {}
for line in open(f"{out}/kernel.dis"):
    m = re.match(r"\s*0x([0-9a-f]+)(?: <[^>]*>)?:\s*(\S+)\s*(.*)", line)
    if m:
        at[int(m.group(1), 16)] = len(ins)
        ins.append((int(m.group(1), 16), m.group(2), m.group(3)))
samples = collections.Counter()
total = 0
for line in open(f"{out}/ips.txt"):
    c, a = line.split()
    total += int(c)
    if int(a, 16) in at:
        samples[at[int(a, 16)]] += int(c)
# Backward branches: the per-lane load loops (short) and the kernel's own loops (long).
loops = []
for i, (a, mn, ops) in enumerate(ins):
    m = re.match(r"0x([0-9a-f]+)", ops) if mn.startswith("j") else None
    if m and int(m.group(1), 16) < a and int(m.group(1), 16) in at:
        loops.append((at[int(m.group(1), 16)], i))
short = [(s, e) for s, e in loops if e - s < 40]
in_short = sum(c for i, c in samples.items() if any(s <= i <= e for s, e in short))
hot = sum(samples.values())
print(f"samples {total}, in the dumped kernel {hot}; in per-lane load loops (short backward branches) {100 * in_short / max(hot, 1):.0f}%")
# The hot loop: the long loop holding the most samples.
best = max(((sum(c for i, c in samples.items() if s <= i <= e), s, e) for s, e in loops if e - s > 300), default=None)
if best is None:
    sys.exit("no long loop found in the hot mapping")
_, s, e = best
body = ins[s:e + 1]
count = lambda p: sum(1 for _, mn, _ in body if mn.startswith(p))
print(f"hot loop {hex(body[0][0])}..{hex(body[-1][0])}: {len(body)} instructions, vmulps {count('vmulps')}, "
      f"vaddps {count('vaddps')}, FMA {sum(1 for _, mn, _ in body if 'fmadd' in mn)}, vblendvps {count('vblendv')}, "
      f"stack operands {sum(1 for _, _, o in body if '(%rsp' in o)}")
asm = [re.sub(r"\s+#.*", "", f"{mn} {ops}".strip()) for _, mn, ops in body
       if not (mn.startswith(("j", "call", "data16")) or "nop" in mn)]
open(f"{out}/loop.s", "w").write("\n".join(asm) + "\n")
for cpu in cpus:
    r = subprocess.run([mca, f"-mcpu={cpu}", "-iterations=20", f"{out}/loop.s"], capture_output=True, text=True)
    open(f"{out}/mca-{cpu}.txt", "w").write(r.stdout + r.stderr)
    cycles = next((l.split()[-1] for l in r.stdout.splitlines() if l.startswith("Total Cycles")), "?")
    per = f"{int(cycles) / 20:.0f}" if cycles.isdigit() else "?"
    print(f"llvm-mca {cpu}: {per} cycles per iteration of the loop (straight-line model; report in {out}/mca-{cpu}.txt)")
PY
